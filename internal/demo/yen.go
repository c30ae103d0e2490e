package demo

import (
	"context"
	"fmt"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/yen"
	"kinko/internal/yen/bankcode"
	"kinko/internal/yen/banksim"
	"kinko/internal/yen/zengin"
)

// The demo's yen, as an exchange has it: customers' yen in a trust
// account (顧客区分管理信託) at 住信ＳＢＩネット 法人第一 with their
// virtual accounts (振込入金口座) at its イチゴ branch, the house's own
// at its operating account at 三菱ＵＦＪ 本店. The bank simulator keeps
// both accounts; the codes are real ones of the built-in bank master.
var (
	YenTrust     = zengin.Account{Bank: "0038", Branch: "106", Type: zengin.Ordinary, Number: "1000001", Name: "ｷﾝｺ ｺｷﾔｸｸﾌﾞﾝｶﾝﾘｼﾝﾀｸ"}
	YenOperating = zengin.Account{Bank: "0005", Branch: "001", Type: zengin.Ordinary, Number: "1000002", Name: "ｶ)ｷﾝｺ"}
)

// YenVirtualBranch is the branch of the demo's virtual accounts.
const YenVirtualBranch = "101"

// HouseYen is the house's own yen at its operating account: the dealer
// desk's inventory.
const HouseYen = 100_000_000

// YenConfig is the demo's yen setup, checked against master (journaled
// with it).
func YenConfig(m *bankcode.Master) yen.Config {
	return yen.Config{Asset: "JPY", Trust: YenTrust, Operating: YenOperating,
		RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ",
		VirtualBranch: YenVirtualBranch, VirtualFirst: 2000001, VirtualCount: 1_000_000,
		Fee: 110, DepositMax: 10_000_000, PaymentMax: 300_000, ReviewTwoPersonAbove: 1_000_000, Tolerance: 0,
		BankMasterSHA256: m.Hash()}
}

// CustomerYen is a demo customer's yen: the name in kana KYC recorded,
// the opening yen sent from their own account, and that account (at
// another bank, which the bank simulator pays).
type CustomerYen struct {
	Customer ledger.OwnerID
	Kana     string
	Opening  uint64
	Own      zengin.Account
}

// CustomersYen are the demo customers' yen, in the order of Customers.
var CustomersYen = []CustomerYen{
	{1001, "ﾔﾏﾀﾞ ﾊﾅｺ", 1_000_000, zengin.Account{Bank: "0001", Branch: "001", Type: zengin.Ordinary, Number: "1234567", Name: "ﾔﾏﾀﾞ ﾊﾅｺ"}},
	{1002, "ｽｽﾞｷ ﾀﾛｳ", 2_000_000, zengin.Account{Bank: "0009", Branch: "200", Type: zengin.Ordinary, Number: "2345678", Name: "ｽｽﾞｷ ﾀﾛｳ"}},
	{1003, "ﾀﾅｶ ﾕｷ", 3_000_000, zengin.Account{Bank: "9900", Branch: "018", Type: zengin.Ordinary, Number: "3456789", Name: "ﾀﾅｶ ﾕｷ"}},
}

// Payees are the accounts the demo's bank simulator pays: the demo
// customers' own.
func Payees() []banksim.Payee {
	var out []banksim.Payee
	for _, c := range CustomersYen {
		out = append(out, banksim.Payee{Account: c.Own})
	}
	return out
}

// YenBank is the bank the demo's opening yen is sent through (the bank
// simulator): In takes a transfer, Close writes the day's statement.
type YenBank interface {
	In(t banksim.Transfer) (string, error)
	Close() (string, error)
}

// OpeningRef is the sender's reference of a customer's opening transfer:
// the bank takes it once, however often it is sent.
func OpeningRef(c ledger.OwnerID) string { return fmt.Sprintf("kinko-dev-opening-%d", c) }

// seedYen journals the yen setup with the built-in master and the
// customers' kana names and virtual accounts (they are verified).
func seedYen(submit func(core.Command) error) error {
	m := bankcode.Builtin()
	if err := submit(core.YenSetup{Config: YenConfig(m), Master: string(m.Encode())}); err != nil {
		return err
	}
	for _, cy := range CustomersYen {
		if err := submit(core.YenSetKana{Customer: cy.Customer, Name: cy.Kana, Actor: "kenji", Reason: "demo: KYC documents"}); err != nil {
			return err
		}
		if err := submit(core.YenAssignVirtual{Customer: cy.Customer}); err != nil {
			return err
		}
	}
	return nil
}

// SendOpeningYen sends each demo customer's opening yen from their own
// account to their virtual account through the bank, each under its
// reference (OpeningRef: sent again, it is the same transfer), and waits
// until the core has recorded every one (the bank's notice, through the
// connector, credits it). It returns the transfers' ids.
func SendOpeningYen(ctx context.Context, c *core.Core, bank YenBank) ([]string, error) {
	var ids []string
	for _, cy := range CustomersYen {
		var va string
		c.Read(func(st *core.State) { va, _ = st.Yen.VirtualOf(uint64(cy.Customer)) })
		if va == "" {
			return nil, fmt.Errorf("demo: customer %d has no virtual account", cy.Customer)
		}
		id, err := bank.In(banksim.Transfer{Branch: YenVirtualBranch, Number: va, Amount: cy.Opening, Sender: cy.Kana, Ref: OpeningRef(cy.Customer)})
		if err != nil {
			return nil, fmt.Errorf("demo: opening yen of customer %d: %w", cy.Customer, err)
		}
		ids = append(ids, id)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := ""
		c.Read(func(st *core.State) {
			for _, id := range ids {
				if d, ok := st.Yen.Deposit(id); !ok || d.Status != yen.DepositCredited {
					missing = id
					return
				}
			}
		})
		if missing == "" {
			return ids, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("demo: the bank's transfer %s was not credited: %w", missing, ctx.Err())
		case <-tick.C:
		}
	}
}
