package signer

import (
	"math/big"
	"strings"
	"testing"

	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// ethWideLimits are co-signer limits above 2^64 wei (18.4 ETH), written
// as JSON numbers and decimal strings: a customer's hour 25 ETH.
const ethWideLimits = `"per_customer_hour":25000000000000000000,"per_customer_day":"30000000000000000000","per_asset_hour":30000000000000000000,"per_asset_day":"40000000000000000000",
    "fee_max":10000000000000000,"fee_hour":50000000000000000,"fee_day":100000000000000000,"tx_hour":10,"tx_day":20,"yen_per_coin":500000,"decimals":18}},
  "all_assets":{"yen_hour":30000000,"yen_day":60000000,"tx_hour":20,"tx_day":40}`

// TestEthWideWithdrawalOnDevnet: a withdrawal of 20 ETH (2·10^19 wei,
// above 2^64) through the real hot signer and co-signer's route pays the
// payee exactly 20·10^18 wei on geth, the hot Safe loses exactly that, and
// the ledger takes exactly the amount and the fee from the customer. The
// co-signer counts its velocity in 128 bits: a second withdrawal that
// takes the customer's hour 1 wei past its 25 ETH limit is refused, and
// the payee gets nothing more.
func TestEthWideWithdrawalOnDevnet(t *testing.T) {
	e := newEthE2ESetup(t, ethSetup{limits: ethWideLimits, hotMilli: 30_000,
		custMilli: map[ledger.OwnerID]int64{1: 26_500, 2: 1_500, 3: 2_000}, coreMaxMilli: 30_000})
	eq(t, "the hot Safe's ledger account at the start", e.hotLedger(), e.balance(t, e.hot))
	twenty := milli(20_000)
	if twenty.IsUint64() {
		t.Fatal("20 ETH fits in 64 bits: the test tests nothing")
	}
	payee, safeBefore, custBefore, feeBefore := e.balance(t, ethPayee(1)), e.balance(t, e.hot), e.custLedger(1), e.feeLedger()
	id := e.withdraw(t, 1, ethPayee(1), twenty)
	done, err := e.signer(t, nil).Step(e.ctx)
	if err != nil || len(done) != 1 {
		t.Fatalf("step = %v, %v", done, err)
	}
	if st := e.status(id); st != withdraw.StatusDone {
		t.Fatalf("withdrawal %s is %s", id, st)
	}
	if b := e.batch(t, id); b.Safe == nil || b.Safe.Value != "20000000000000000000" {
		t.Fatalf("the batch's SafeTx: %+v", b.Safe)
	}
	eq(t, "the payee's gain", new(big.Int).Sub(e.balance(t, ethPayee(1)), payee), twenty)
	eq(t, "the Safe's loss", new(big.Int).Sub(safeBefore, e.balance(t, e.hot)), twenty)
	eq(t, "the customer's ledger loss", new(big.Int).Sub(custBefore, e.custLedger(1)), new(big.Int).Add(twenty, big.NewInt(ethWdFee)))
	eq(t, "the house's fee", new(big.Int).Sub(e.feeLedger(), feeBefore), big.NewInt(ethWdFee))
	eq(t, "the hot Safe's ledger account after", e.hotLedger(), e.balance(t, e.hot))

	// 5 ETH and 1 wei more: the customer's hour would be 25 ETH + 1 wei.
	payee = e.balance(t, ethPayee(1))
	over := new(big.Int).Add(milli(5_000), big.NewInt(1))
	e.withdraw(t, 1, ethPayee(1), over)
	if _, err := e.signer(t, nil).Step(e.ctx); err == nil || !strings.Contains(err.Error(), "would reach 25000000000000000001") {
		t.Fatalf("a step past the co-signer's 25 ETH hour = %v; want its refusal at 25000000000000000001 wei", err)
	}
	eq(t, "the payee's gain after the refusal", new(big.Int).Sub(e.balance(t, ethPayee(1)), payee), new(big.Int))
}
