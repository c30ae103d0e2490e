package safe

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// BenchmarkDepositAddress derives counterfactual deposit addresses, one
// per customer index, for a 2-of-3 cold Safe configuration.
func BenchmarkDepositAddress(b *testing.B) {
	d := testDeployment(b)
	init, err := d.Initializer(Config{Owners: []common.Address{{19: 0xa}, {19: 0xb}, {19: 0xc}}, Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	p := d.Predictor(init)
	b.ReportAllocs()
	var sink common.Address
	for i := 0; b.Loop(); i++ {
		sink = p.AddressIndex(uint64(i))
	}
	_ = sink
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "addresses/s")
}

// BenchmarkSafeTxHash computes the EIP-712 hash of a plain transfer
// SafeTx, as a signer recomputes it before signing.
func BenchmarkSafeTxHash(b *testing.B) {
	tx := &SafeTx{To: common.Address{19: 7}, Value: big.NewInt(1e18), Nonce: big.NewInt(42)}
	safe, chain := common.Address{19: 9}, big.NewInt(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tx.Hash(chain, safe); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkSafeTxHashBatch50 hashes a SafeTx that carries a MultiSend
// batch of 50 transfers (the keccak of its data dominates).
func BenchmarkSafeTxHashBatch50(b *testing.B) {
	calls := make([]Call, 50)
	for i := range calls {
		calls[i] = Call{To: common.Address{18: byte(i), 19: 1}, Value: big.NewInt(int64(1e15 + i))}
	}
	data, err := EncodeMultiSend(calls)
	if err != nil {
		b.Fatal(err)
	}
	tx := &SafeTx{To: common.Address{19: 5}, Data: data, Operation: OpDelegateCall, Nonce: big.NewInt(42)}
	safe, chain := common.Address{19: 9}, big.NewInt(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tx.Hash(chain, safe); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify2of3 checks two owners' signatures of a SafeTx hash
// (two ecrecovers), as a co-signer does before it adds its own.
func BenchmarkVerify2of3(b *testing.B) {
	var owners []common.Address
	var sigs []Signature
	h := common.Hash{1, 2, 3}
	for i := range 3 {
		k, _ := crypto.GenerateKey()
		owners = append(owners, crypto.PubkeyToAddress(k.PublicKey))
		if i < 2 {
			s, _ := Sign(h, k)
			sigs = append(sigs, s)
		}
	}
	enc, err := EncodeSignatures(h, sigs)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifySignatures(h, enc, owners, 2); err != nil {
			b.Fatal(err)
		}
	}
}
