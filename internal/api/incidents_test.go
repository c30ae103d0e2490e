package api

import (
	"strconv"
	"strings"
	"testing"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/ledger"
)

// TestHoldingsAndIncidents: holdings at a point in time over the API (JSON
// and CSV), an incident's report and notice, and bad queries.
func TestHoldingsAndIncidents(t *testing.T) {
	e := newEnv(t)
	id, _ := e.trader("holder@example.jp", 0, 5_000_000)
	var before uint64
	e.core.Read(func(st *core.State) { before = st.Seq() })
	e.fund(avail(id, btc), 1_000_000) // after the moment
	e.submit(core.OpenIncident{Incident: incident.Incident{ID: "theft-1", Asset: "BTC", Detector: "watcher", Reason: "unexplained outflow", TxIDs: []string{"abcd"}}})
	kenji := e.loginOperator("kenji")
	var rep struct {
		Holders  int    `json:"holders"`
		Total    uint64 `json:"total,string"`
		Holdings []struct {
			Customer ledger.OwnerID `json:"customer"`
			Total    uint64         `json:"total,string"`
		} `json:"holdings"`
	}
	r := e.do("GET", "/v1/holdings?asset=BTC&at="+itoa(before), kenji, nil)
	r.json(t, &rep)
	if r.status != 200 || rep.Holders != 1 || rep.Holdings[0].Customer != id || rep.Holdings[0].Total != 5_000_000 {
		t.Fatalf("holdings at %d = %d %s", before, r.status, r.body)
	}
	r = e.do("GET", "/v1/holdings?asset=btc&format=csv", kenji, nil)
	if r.status != 200 || !strings.Contains(string(r.body), itoa(uint64(id))+",6000000,0,6000000,BTC,") {
		t.Fatalf("holdings csv = %d %s", r.status, r.body)
	}
	for q, want := range map[string]int{
		"asset=DOGE":                        404,
		"asset=BTC&at=yesterday":            400,
		"asset=BTC&at=99999":                422,
		"asset=BTC&at=2999-01-01T00:00:00Z": 422,
		"asset=BTC&at=2001-01-01T00:00:00Z": 422,
		"asset=BTC&format=xml":              400,
	} {
		if r := e.do("GET", "/v1/holdings?"+q, kenji, nil); r.status != want {
			t.Errorf("holdings?%s = %d %s; want %d", q, r.status, r.body, want)
		}
	}
	_, cust := e.signUp("nosy@example.jp")
	if r := e.do("GET", "/v1/holdings?asset=BTC", cust, nil); r.status != 403 {
		t.Errorf("a customer reading holdings = %d", r.status)
	}
	r = e.do("GET", "/v1/incidents/theft-1?format=md", kenji, nil)
	if r.status != 200 || !strings.Contains(string(r.body), "# Incident theft-1") || !strings.Contains(string(r.body), "- `abcd`") {
		t.Fatalf("incident md = %d %s", r.status, r.body)
	}
	if r = e.do("GET", "/v1/incidents/theft-1?format=notice", kenji, nil); r.status != 200 || !strings.Contains(string(r.body), "unauthorized transfer of BTC") {
		t.Fatalf("notice = %d %s", r.status, r.body)
	}
	if r = e.do("GET", "/v1/incidents/nope", kenji, nil); r.status != 404 {
		t.Fatalf("unknown incident = %d", r.status)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
