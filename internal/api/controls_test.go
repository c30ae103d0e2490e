package api

import (
	"encoding/json"
	"strings"
	"testing"

	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/people"
)

// TestHaltLiftAndStagedResumption: one operator halts alone; lifts need an
// approver; a staged resumption plan, approved by a second person, fixes
// the order of the lifts (yen first, receiving crypto last) and the public
// status shows its progress. Bad switches, self-approval and lifts out of
// order are refused with nothing changed.
func TestHaltLiftAndStagedResumption(t *testing.T) {
	e := newEnv(t)
	aiko, kenji := e.loginOperator("aiko"), e.loginOperator("kenji")
	for _, sw := range []string{"BTC:withdraw", "BTC:deposit", "bank", "JPY:withdraw"} {
		if r := e.do("POST", "/v1/halts", aiko, HaltRequest{Switch: sw, Reason: "theft under investigation"}); r.status != 201 {
			t.Fatalf("halt %s = %d %s", sw, r.status, r.body)
		}
	}
	for _, bad := range []HaltRequest{{Switch: "XEM:withdraw", Reason: "x"}, {Switch: "BTC:fly", Reason: "x"}, {Switch: "bank:withdraw", Reason: "x"}, {Switch: "BTC:trade", Reason: ""}} {
		if r := e.do("POST", "/v1/halts", aiko, bad); r.status != 422 {
			t.Errorf("halt %+v = %d %s; want 422", bad, r.status, r.body)
		}
	}
	if r := e.do("POST", "/v1/halts", "", HaltRequest{Switch: "global", Reason: "x"}); r.status != 401 {
		t.Errorf("anonymous halt = %d", r.status)
	}
	var cv ControlsView
	e.do("GET", "/v1/controls", kenji, nil).json(t, &cv)
	halted := 0
	for _, row := range cv.Rows {
		for _, c := range row.Cells {
			if c.Halted {
				halted++
				if c.Actor != "aiko" || c.Reason != "theft under investigation" || c.Since == nil {
					t.Errorf("cell %+v", c)
				}
			}
		}
	}
	if halted != 4 {
		t.Fatalf("%d switches halted; want 4: %+v", halted, cv.Rows)
	}

	// The plan: yen bank first, then yen withdrawals, then crypto.
	plan := func(id string, steps ...string) resp {
		// Steps as the halt matrix names them, as every switch in the API.
		payload, _ := json.Marshal(map[string]any{"id": id, "steps": steps})
		return e.do("POST", "/v1/requests", aiko, OpenRequestRequest{ID: "plan-" + id, Kind: core.KindResumptionPlan, Payload: payload, Reason: "BITPoint order", RequiredRole: people.RoleApprover})
	}
	if r := plan("dup", "bank", "bank"); r.status != 422 {
		t.Fatalf("a plan repeating a step = %d %s", r.status, r.body)
	}
	if r := plan("r1", "bank", "JPY:withdraw", "BTC:withdraw", "BTC:deposit"); r.status != 201 {
		t.Fatalf("plan = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/plan-r1/approve", aiko, DecideRequest{Reason: "mine"}); r.status != 403 {
		t.Fatalf("self-approved plan = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/plan-r1/approve", kenji, DecideRequest{Reason: "agreed"}); r.status != 200 {
		t.Fatalf("plan approval = %d %s", r.status, r.body)
	}
	if r := plan("r2", "BTC:deposit"); r.status != 409 {
		t.Fatalf("a second plan while one is followed = %d %s", r.status, r.body)
	}

	lift := func(id, sw string) resp {
		payload, _ := json.Marshal(map[string]any{"switch": sw})
		r := e.do("POST", "/v1/requests", aiko, OpenRequestRequest{ID: id, Kind: core.KindLiftHalt, Payload: payload, Reason: "resume " + sw, RequiredRole: people.RoleApprover})
		if r.status != 201 {
			return r
		}
		return e.do("POST", "/v1/requests/"+id+"/approve", kenji, DecideRequest{Reason: "checked"})
	}
	// Out of order: refused, and the request stays pending (nothing half-done).
	if r := lift("lift-btc-early", "BTC:deposit"); r.status != 409 || !strings.Contains(string(r.body), "plan r1") {
		t.Fatalf("lift out of order = %d %s", r.status, r.body)
	}
	e.core.Read(func(st *core.State) {
		if q, _ := st.People.Request("lift-btc-early"); q.State != people.RequestPending {
			t.Fatalf("refused lift request is %s", q.State)
		}
		if st.Controls.Following().Done != 0 {
			t.Fatal("the plan moved")
		}
	})
	var sv StatusView
	e.do("GET", "/v1/status", "", nil).json(t, &sv)
	if sv.Resumption == nil || sv.Resumption.Done != 0 || strings.Join(sv.Resumption.Steps, ",") != "bank,JPY:withdraw,BTC:withdraw,BTC:deposit" {
		t.Fatalf("status = %+v", sv.Resumption)
	}
	for i, sw := range []string{"bank", "JPY:withdraw", "BTC:withdraw"} {
		if r := lift("lift-"+sw, sw); r.status != 200 {
			t.Fatalf("lift %s = %d %s", sw, r.status, r.body)
		}
		e.do("GET", "/v1/status", "", nil).json(t, &sv)
		if sv.Resumption == nil || sv.Resumption.Done != i+1 {
			t.Fatalf("after %s: %+v", sw, sv.Resumption)
		}
	}
	// The early request can now be approved: its turn has come.
	if r := e.do("POST", "/v1/requests/lift-btc-early/approve", kenji, DecideRequest{Reason: "now"}); r.status != 200 {
		t.Fatalf("last step = %d %s", r.status, r.body)
	}
	sv = StatusView{}
	e.do("GET", "/v1/status", "", nil).json(t, &sv)
	if len(sv.Halts) != 0 || sv.Resumption != nil {
		t.Fatalf("after the plan: %+v", sv)
	}
	e.do("GET", "/v1/controls", kenji, nil).json(t, &cv)
	if len(cv.Plans) != 1 || cv.Plans[0].Done != 4 || cv.Plans[0].Following || cv.Plans[0].Approver != "kenji" || len(cv.Lifts) != 4 {
		t.Fatalf("controls after = %+v %+v", cv.Plans, cv.Lifts)
	}
	// The timeline holds what took effect: the refused self-approval and
	// the lift refused out of order are not in it; the later one is.
	var applied func(journal.Entry, core.Command) bool
	var names core.Names
	e.core.Read(func(st *core.State) { applied, names = core.Applied(st), core.NamesOf(st) })
	evs, err := core.Timeline(e.core.Journal(), 1, applied, names)
	if err != nil {
		t.Fatal(err)
	}
	var approvals []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.What, "approves request") {
			approvals = append(approvals, ev.Actor+" "+ev.What)
		}
	}
	if strings.Join(approvals, "; ") != "kenji approves request plan-r1; kenji approves request lift-bank; kenji approves request lift-JPY:withdraw; kenji approves request lift-BTC:withdraw; kenji approves request lift-btc-early" {
		t.Fatalf("approvals in the timeline: %q", approvals)
	}
	// The plan survives a restart (snapshot and replay).
	e.restart()
	e.core.Read(func(st *core.State) {
		if ps := st.Controls.Plans(); len(ps) != 1 || ps[0].Done != 4 {
			t.Fatalf("after restart: %+v", ps)
		}
	})
}
