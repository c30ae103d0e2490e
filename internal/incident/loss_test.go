package incident

import (
	"encoding/json"
	"testing"

	"kinko/internal/withdraw"
)

// TestLossWide: an incident's loss is 128-bit (a drain of 50 ETH is
// 5·10^19 wei, above 2^64), adds up exactly when the incident is reopened
// with new transactions, saturates at 2^128-1 instead of wrapping, and is
// journaled as a bare JSON number, so an incident written when losses were
// 64-bit decodes and encodes to the same bytes.
func TestLossWide(t *testing.T) {
	fifty, err := withdraw.ParseAmount("50000000000000000000")
	if err != nil {
		t.Fatal(err)
	}
	s := New()
	if err := s.Open(Incident{ID: "exec-ETH-1", Asset: "ETH", Detector: "watcher", Reason: "drain", TxIDs: []string{"a"}, Loss: fifty}, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Open(Incident{ID: "exec-ETH-1", Asset: "ETH", Detector: "watcher", Reason: "drain", TxIDs: []string{"b"}, Loss: fifty}, 2, 2); err != nil {
		t.Fatal(err)
	}
	// The same transaction again adds nothing.
	if err := s.Open(Incident{ID: "exec-ETH-1", Asset: "ETH", Detector: "watcher", Reason: "drain", TxIDs: []string{"b"}, Loss: fifty}, 3, 3); err != nil {
		t.Fatal(err)
	}
	in, _ := s.Get("exec-ETH-1")
	if in.Loss.String() != "100000000000000000000" {
		t.Fatalf("loss after two transactions of 50 ETH = %s wei", in.Loss)
	}
	if err := s.Open(Incident{ID: "exec-ETH-1", Asset: "ETH", Detector: "watcher", Reason: "drain", TxIDs: []string{"c"}, Loss: withdraw.MaxAmount}, 4, 4); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.Get("exec-ETH-1"); in.Loss != withdraw.MaxAmount {
		t.Fatalf("loss past 2^128-1 = %s; want it saturated", in.Loss)
	}
	b, err := json.Marshal(Incident{ID: "x", Asset: "ETH", Detector: "watcher", Reason: "r", Loss: fifty})
	if err != nil || string(b) != `{"id":"x","asset":"ETH","detector":"watcher","reason":"r","loss":50000000000000000000,"opened":0,"seq":0}` {
		t.Fatalf("encoded %s, %v", b, err)
	}
	for _, old := range []string{
		`{"id":"outflow-BTC-1","asset":"BTC","detector":"watcher","reason":"unexplained outflow","txids":["ab"],"loss":18994932,"opened":5,"seq":7}`,
		`{"id":"close-1","asset":"BTC","detector":"aiko","reason":"r","opened":5,"seq":7}`,
	} {
		var in Incident
		if err := json.Unmarshal([]byte(old), &in); err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(in); string(b) != old {
			t.Fatalf("64-bit incident re-encoded as\n%s\nwant\n%s", b, old)
		}
	}
}
