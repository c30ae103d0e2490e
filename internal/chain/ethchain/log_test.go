package ethchain_test

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/chain"
	"kinko/internal/chain/ethchain"
)

func topicOf(a common.Address) common.Hash { return common.BytesToHash(a.Bytes()) }

// TestTransferLog: the shapes of log a token contract (or any contract)
// may emit, and what the decoder makes of them.
func TestTransferLog(t *testing.T) {
	from, to := common.HexToAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), common.HexToAddress("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
	token := common.HexToAddress("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB")
	word := func(v *big.Int) []byte { return common.LeftPadBytes(v.Bytes(), 32) }
	most := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	ok := types.Log{Address: token, Topics: []common.Hash{ethchain.TransferTopic, topicOf(from), topicOf(to)}, Data: word(most), Index: 7, TxHash: common.Hash{1}}
	dirty := topicOf(to)
	dirty[0] = 1
	for _, tc := range []struct {
		name   string
		edit   func(l *types.Log)
		ok     bool
		amount chain.Amount
		err    error
	}{
		{"2^128-1", func(*types.Log) {}, true, chain.Amount{Hi: ^uint64(0), Lo: ^uint64(0)}, nil},
		{"zero", func(l *types.Log) { l.Data = make([]byte, 32) }, true, chain.Amount{}, nil},
		{"2^128", func(l *types.Log) { l.Data = word(new(big.Int).Lsh(big.NewInt(1), 128)) }, true, chain.Amount{}, chain.ErrAmountRange},
		{"2^256-1", func(l *types.Log) {
			l.Data = word(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)))
		}, true, chain.Amount{}, chain.ErrAmountRange},
		{"another event", func(l *types.Log) { l.Topics = []common.Hash{{9}, l.Topics[1], l.Topics[2]} }, false, chain.Amount{}, nil},
		{"ERC-721 (tokenId indexed)", func(l *types.Log) { l.Topics = append(l.Topics, common.Hash{5}); l.Data = nil }, false, chain.Amount{}, nil},
		{"two topics", func(l *types.Log) { l.Topics = l.Topics[:2] }, false, chain.Amount{}, nil},
		{"value of 31 bytes", func(l *types.Log) { l.Data = l.Data[1:] }, false, chain.Amount{}, nil},
		{"value of 64 bytes", func(l *types.Log) { l.Data = append(l.Data, l.Data...) }, false, chain.Amount{}, nil},
		{"removed", func(l *types.Log) { l.Removed = true }, false, chain.Amount{}, nil},
		{"to with high bits", func(l *types.Log) { l.Topics = []common.Hash{l.Topics[0], l.Topics[1], dirty} }, false, chain.Amount{}, nil},
		{"log index beyond 32 bits", func(l *types.Log) { l.Index = 1 << 32 }, false, chain.Amount{}, nil},
	} {
		l := ok
		l.Topics = append([]common.Hash(nil), ok.Topics...)
		l.Data = append([]byte(nil), ok.Data...)
		tc.edit(&l)
		got, isTransfer, err := ethchain.TransferLog(l)
		if isTransfer != tc.ok || !errors.Is(err, tc.err) || (tc.err == nil && got.Amount != tc.amount) {
			t.Errorf("%s: TransferLog = %+v, %v, %v; want ok %v, amount %s, error %v", tc.name, got, isTransfer, err, tc.ok, tc.amount, tc.err)
			continue
		}
		if isTransfer && (got.From != from.Hex() || got.To != to.Hex() || got.Asset != token.Hex() || got.Index != 7) {
			t.Errorf("%s: TransferLog = %+v; want from %s to %s of %s at 7", tc.name, got, from, to, token)
		}
	}
}

// FuzzTransferLog: whatever the topics and data, the decoder does not
// panic; what it takes is a three-topic Transfer with a 32-byte value
// whose amount is that value exactly, and a value of 129 bits or more is
// refused.
func FuzzTransferLog(f *testing.F) {
	f.Add(ethchain.TransferTopic.Bytes(), make([]byte, 64), make([]byte, 32), uint(0))
	f.Add(ethchain.TransferTopic.Bytes(), make([]byte, 64), append([]byte{1}, make([]byte, 31)...), uint(3))
	f.Fuzz(func(t *testing.T, topic0, addrs, data []byte, index uint) {
		l := types.Log{Topics: []common.Hash{common.BytesToHash(topic0)}, Data: data, Index: index}
		for len(addrs) >= 32 && len(l.Topics) < 4 {
			l.Topics = append(l.Topics, common.BytesToHash(addrs[:32]))
			addrs = addrs[32:]
		}
		got, ok, err := ethchain.TransferLog(l)
		if !ok {
			if err != nil {
				t.Fatalf("not a transfer, and an error: %v", err)
			}
			return
		}
		if len(l.Topics) != 3 || len(data) != 32 || l.Topics[0] != ethchain.TransferTopic || index > 1<<32-1 {
			t.Fatalf("took a log of %d topics, %d bytes: %+v", len(l.Topics), len(data), l)
		}
		v := new(big.Int).SetBytes(data)
		if v.BitLen() > 128 {
			if !errors.Is(err, chain.ErrAmountRange) {
				t.Fatalf("a value of %d bits: %v; want ErrAmountRange", v.BitLen(), err)
			}
			return
		}
		if err != nil || got.Amount.Big().Cmp(v) != 0 {
			t.Fatalf("amount %s, %v; want %s", got.Amount, err, v)
		}
	})
}
