package incident

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// coincheck is the 2018 theft as kinko would have recorded it.
func coincheck() *Report {
	t0 := time.Date(2018, 1, 25, 15, 2, 13, 0, time.UTC) // 00:02:13 JST
	ms := func(d int) time.Time { return t0.Add(time.Duration(d) * time.Millisecond) }
	in := Incident{ID: "outflow-XEM-6c5d3a9e", Asset: "XEM", Detector: "watcher", Reason: "unexplained outflow", TxIDs: []string{"6c5d3a9e0b1f"},
		Opened: ms(5).UnixNano(), Seq: 1042, Notes: []Note{{Time: ms(60_000).UnixNano(), Seq: 1050, Actor: "aiko", Text: "hot wallet keys 1 and 2 considered leaked"}}}
	return &Report{Incident: in, Asset: "XEM", Zone: time.FixedZone("JST", 9*3600),
		Events: []Event{
			{Seq: 1041, Time: ms(4), Actor: "watcher", What: "halt asset 4 withdraw", Detail: "transaction 6c5d3a9e0b1f in the mempool spends our output"},
			{Seq: 1042, Time: ms(5), Actor: "watcher", What: "incident outflow-XEM-6c5d3a9e", Detail: "unexplained outflow 6c5d3a9e0b1f"},
			{Seq: 1050, Time: ms(60_000), Actor: "aiko", What: "note on incident outflow-XEM-6c5d3a9e", Detail: "hot wallet keys 1 and 2 considered leaked"},
			{Seq: 1100, Time: ms(3_600_000), Actor: "aiko", What: "writes compensation plan nem-2018", Detail: "fixed_rate: 260000 customers"},
			{Seq: 1101, Time: ms(3_700_000), Actor: "kenji", What: "approves request approve-nem-2018", Detail: "dry run checked"},
			{Seq: 1102, Time: ms(3_800_000), Actor: "aiko", What: "executes compensation plan nem-2018", Detail: "payouts 1 to 8192"},
			{Seq: 1200, Time: ms(7_200_000), Actor: "aiko + kenji", What: "lift asset 1 bank", Detail: "resume yen first"},
		},
		Plans: []PlanLine{{ID: "nem-2018", Rule: "fixed_rate", Rate: "88.549 JPY per XEM", Rounding: "down to the yen", At: t0, Customers: 260_000,
			Total: "46,300,000,000 JPY", Largest: "1,234,567 JPY", Status: "done", Requester: "aiko", Approver: "kenji"}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/incident -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

// TestReportGolden: the Markdown report, the HTML report with its SVG
// timeline, and the customer notice, against reviewed golden files.
func TestReportGolden(t *testing.T) {
	r := coincheck()
	var md, h, n bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteNotice(&n); err != nil {
		t.Fatal(err)
	}
	golden(t, "coincheck.md", md.Bytes())
	golden(t, "coincheck.html", h.Bytes())
	golden(t, "coincheck-notice.txt", n.Bytes())
	// The facts are in the notice.
	for _, want := range []string{"2018-01-26 00:02:13 JST", "260000 customers", "88.549 JPY per XEM", "down to the yen", "46,300,000,000 JPY", "6c5d3a9e0b1f", "services have resumed"} {
		if !bytes.Contains(n.Bytes(), []byte(want)) {
			t.Errorf("notice lacks %q", want)
		}
	}
}

// TestIncidentNotesAndClose: notes need text; a closed incident stays
// closed.
func TestIncidentNotesAndClose(t *testing.T) {
	s := New()
	if err := s.Open(Incident{ID: "i", Detector: "watcher", Reason: "r"}, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AddNote("i", "aiko", "", 2, 2); err == nil {
		t.Fatal("empty note accepted")
	}
	if err := s.AddNote("x", "aiko", "t", 2, 2); err != ErrUnknown {
		t.Fatalf("note on an unknown incident = %v", err)
	}
	if err := s.Close("i", "aiko", "paid", 3, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close("i", "aiko", "again", 4, 4); err != ErrClosed {
		t.Fatalf("closing twice = %v", err)
	}
	if in, _ := s.Get("i"); in.ClosedBy != "aiko" || len(in.Notes) != 1 || in.Notes[0].Text != "closed: paid" {
		t.Fatalf("incident %+v", in)
	}
}

// TestNoticeStatusFromState: the notice's service status is what is halted
// when it is written, not what the timeline suggests.
func TestNoticeStatusFromState(t *testing.T) {
	for _, c := range []struct {
		halted []string
		want   string
	}{
		{nil, "Service status: all XEM services have resumed"},
		{[]string{"deposit", "withdraw"}, "Service status: XEM withdrawals remain suspended while we investigate (suspended now: deposit, withdraw)."},
		{[]string{"deposit"}, "Service status: XEM withdrawals have resumed; still suspended: deposit"},
	} {
		r := coincheck()
		r.Halted = c.halted
		var n bytes.Buffer
		if err := r.WriteNotice(&n); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(n.String(), c.want) {
			t.Errorf("halted %v: notice lacks %q:\n%s", c.halted, c.want, n.String())
		}
	}
}
