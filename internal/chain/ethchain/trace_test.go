package ethchain_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain"
	"kinko/internal/chain/ethchain"
)

var (
	traceTx  = common.HexToHash("0x11")
	watchedA = common.HexToAddress("0x00000000000000000000000000000000000000aa")
	watchedB = common.HexToAddress("0x00000000000000000000000000000000000000bb")
	contract = common.HexToAddress("0x00000000000000000000000000000000000000cc")
)

func isWatched(a string) bool { return a == watchedA.Hex() || a == watchedB.Hex() }

// frame writes a callTracer frame.
func frame(typ string, to common.Address, value, errText string, calls ...string) string {
	s := fmt.Sprintf(`{"type":%q,"from":"%s","to":"%s"`, typ, contract.Hex(), to.Hex())
	if value != "" {
		s += fmt.Sprintf(`,"value":%q`, value)
	}
	if errText != "" {
		s += fmt.Sprintf(`,"error":%q`, errText)
	}
	if len(calls) > 0 {
		s += `,"calls":[` + strings.Join(calls, ",") + `]`
	}
	return s + "}"
}

func block(top string) []byte {
	return []byte(fmt.Sprintf(`[{"txHash":"%s","result":%s}]`, traceTx.Hex(), top))
}

// TestDecodeTraces: the frames below the transaction's own that move value
// to a watched address, numbered depth first, none below a reverted
// frame, nothing of a failed transaction; DELEGATECALL, CALLCODE and
// STATICCALL move nothing.
func TestDecodeTraces(t *testing.T) {
	top := frame("CALL", contract, "0x5", "",
		frame("CALL", watchedA, "0x3", ""), // 1
		frame("CALL", contract, "0x1", "execution reverted", // 2
			frame("CALL", watchedB, "0x1", "")), // 3: under a revert
		frame("CALL", watchedB, "0x2", "insufficient balance for transfer"), // 4
		frame("DELEGATECALL", watchedA, "0x9", ""),                          // 5
		frame("STATICCALL", watchedA, "", ""),                               // 6
		frame("CALLCODE", watchedA, "0x9", ""),                              // 7
		frame("CREATE2", watchedB, "0x4", "", // 8
			frame("SELFDESTRUCT", watchedA, "0x6", "")), // 9
		frame("CALL", common.HexToAddress("0x1234"), "0x7", ""), // 10: not watched
		frame("CALL", watchedA, "0x0", ""))                      // 11: zero
	got, err := ethchain.DecodeTraces(block(top), []common.Hash{traceTx}, isWatched)
	if err != nil {
		t.Fatal(err)
	}
	id := chain.NewID(chain.Ethereum, traceTx)
	want := []chain.Transfer{
		{Tx: id, Index: chain.InternalIndex(1), From: contract.Hex(), To: watchedA.Hex(), Amount: chain.Amount{Lo: 3}},
		{Tx: id, Index: chain.InternalIndex(8), From: contract.Hex(), To: watchedB.Hex(), Amount: chain.Amount{Lo: 4}},
		{Tx: id, Index: chain.InternalIndex(9), From: contract.Hex(), To: watchedA.Hex(), Amount: chain.Amount{Lo: 6}},
	}
	if len(got) != 1 || got[0].Failed || fmt.Sprint(got[0].Transfers) != fmt.Sprint(want) {
		t.Fatalf("decoded %+v; want %+v", got, want)
	}
	// The same frames in a transaction that failed: nothing.
	failed := frame("CALL", contract, "0x5", "execution reverted", frame("CALL", watchedA, "0x3", ""))
	got, err = ethchain.DecodeTraces(block(failed), []common.Hash{traceTx}, isWatched)
	if err != nil || len(got) != 1 || !got[0].Failed || len(got[0].Transfers) != 0 {
		t.Fatalf("failed transaction: %+v, %v; want failed, no transfers", got, err)
	}
}

// TestDecodeTracesBadData: answers no node of a valid chain gives are
// refused whole with chain.ErrChainData.
func TestDecodeTracesBadData(t *testing.T) {
	ok := frame("CALL", watchedA, "0x3", "")
	cases := map[string]string{
		"value of 2^128":           string(block(frame("CALL", contract, "0x0", "", ok, frame("CALL", watchedA, "0x100000000000000000000000000000000", "")))),
		"value to nobody of 2^128": string(block(frame("CALL", contract, "0x0", "", frame("CALL", common.HexToAddress("0x99"), "0x100000000000000000000000000000000", "")))),
		"frame without to":         string(block(frame("CALL", contract, "0x0", "", strings.Replace(ok, `,"to":"`+watchedA.Hex()+`"`, "", 1)))),
		"frame without from":       string(block(frame("CALL", contract, "0x0", "", strings.Replace(ok, `"from":"`+contract.Hex()+`",`, "", 1)))),
		"bad hex value":            string(block(frame("CALL", contract, "0x0", "", frame("CALL", watchedA, "0xzz", "")))),
		"leading zero":             string(block(frame("CALL", contract, "0x0", "", frame("CALL", watchedA, "0x03", "")))),
		"decimal value":            string(block(frame("CALL", contract, "0x0", "", frame("CALL", watchedA, "3", "")))),
		"short address":            string(block(frame("CALL", contract, "0x0", "", strings.Replace(ok, watchedA.Hex(), "0xaa", 1)))),
		"unknown type":             string(block(frame("CALL", contract, "0x0", "", frame("TELEPORT", watchedA, "0x3", "")))),
		"another tx's hash":        strings.Replace(string(block(ok)), traceTx.Hex(), common.HexToHash("0x12").Hex(), 1),
		"no hash":                  fmt.Sprintf(`[{"result":%s}]`, ok),
		"no frame":                 fmt.Sprintf(`[{"txHash":"%s"}]`, traceTx.Hex()),
		"two traces":               fmt.Sprintf(`[{"txHash":"%s","result":%s},{"txHash":"%s","result":%s}]`, traceTx.Hex(), ok, traceTx.Hex(), ok),
		"null":                     "null",
		"not json":                 "[{",
	}
	for name, raw := range cases {
		got, err := ethchain.DecodeTraces([]byte(raw), []common.Hash{traceTx}, isWatched)
		if !errors.Is(err, chain.ErrChainData) || got != nil {
			t.Errorf("%s: %+v, %v; want chain.ErrChainData", name, got, err)
		}
	}
	if _, err := ethchain.DecodeTraces(block(frame("CALL", contract, "0x0", "", frame("CALL", watchedA, "0x100000000000000000000000000000000", ""))), []common.Hash{traceTx}, isWatched); !errors.Is(err, chain.ErrAmountRange) {
		t.Errorf("value of 2^128: %v; want chain.ErrAmountRange too", err)
	}
	// A transaction the node could not trace is the node's error.
	_, err := ethchain.DecodeTraces([]byte(fmt.Sprintf(`[{"txHash":"%s","error":"missing trie node"}]`, traceTx.Hex())), []common.Hash{traceTx}, isWatched)
	if err == nil || errors.Is(err, chain.ErrChainData) {
		t.Errorf("untraceable transaction: %v; want an error of the node", err)
	}
}

// FuzzDecodeTraces: any answer decodes without a panic, and what it
// returns holds: one entry per transaction, each transfer of the entry's
// transaction, to a watched address, of more than zero, with an internal
// Index unique in its transaction, nothing for a failed one.
func FuzzDecodeTraces(f *testing.F) {
	f.Add(block(frame("CALL", contract, "0x5", "", frame("CALL", watchedA, "0x3", ""), frame("CREATE", watchedB, "0x1", "", frame("CALL", watchedA, "0x2", "")))))
	f.Add(block(frame("CALL", contract, "0x5", "execution reverted", frame("CALL", watchedA, "0x3", ""))))
	f.Add(block(frame("CALL", contract, "0x0", "", frame("CALL", watchedA, "0x100000000000000000000000000000000", ""))))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ethchain.DecodeTraces(raw, []common.Hash{traceTx}, isWatched)
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with %+v", err, got)
			}
			return
		}
		if len(got) != 1 || got[0].Tx != traceTx {
			t.Fatalf("decoded %+v for one transaction", got)
		}
		if got[0].Failed && len(got[0].Transfers) > 0 {
			t.Fatalf("failed transaction with transfers %+v", got[0].Transfers)
		}
		seen := map[uint32]bool{}
		for _, tr := range got[0].Transfers {
			n, internal := chain.IsInternal(tr.Index)
			if !internal || n == 0 || seen[tr.Index] || tr.Amount.IsZero() || !isWatched(tr.To) || tr.Tx != chain.NewID(chain.Ethereum, traceTx) || tr.Asset != "" {
				t.Fatalf("transfer %+v", tr)
			}
			seen[tr.Index] = true
		}
	})
}
