package api

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/ledger"
)

// The console's journal page lists entries newest first, a page of
// consoleJournalLimit, filtered by kind, by actor (the operator, customer
// channel or detector that asked) and by customer (the one the entry is
// about); "Older" pages back from the last entry shown.

// consoleJournalLimit is the console journal's page.
const consoleJournalLimit = 100

// consoleJournalScan bounds the entries one page reads looking for
// matches: a filter that matches nothing in them says so and offers to
// look further back.
const consoleJournalScan = 200_000

// journalFilter is what the console's journal page keeps.
type journalFilter struct {
	Kind     string
	Actor    string
	Customer ledger.OwnerID
}

func (f journalFilter) empty() bool { return f.Kind == "" && f.Actor == "" && f.Customer == 0 }

// ConsoleEntry is an entry as the console's journal lists it.
type ConsoleEntry struct {
	EntryView
	Actor    string
	Customer ledger.OwnerID
}

// consoleJournalPage reads entries before seq before (0: from the head),
// newest first, those f keeps, up to limit. older is the cursor of the
// next page back (0: none); scanned how many entries were read.
func (s *Server) consoleJournalPage(before uint64, limit int, f journalFilter) (items []ConsoleEntry, older, scanned uint64, err error) {
	head, _, _ := s.core.Journal().Head()
	hi := head
	if before != 0 {
		if before > head+1 {
			return nil, 0, 0, fmt.Errorf("%w: cursor %d is past the journal's end (%d entries)", errBadJSON, before, head)
		}
		hi = before - 1
	}
	const window = 512
	for hi >= 1 && len(items) < limit && scanned < consoleJournalScan {
		lo := uint64(1)
		if hi > window {
			lo = hi - window + 1
		}
		var chunk []ConsoleEntry
		err = s.core.Journal().Scan(lo, func(e journal.Entry) error {
			if e.Seq > hi {
				return journal.ErrStop
			}
			c, derr := core.DecodeCommand(e.Kind, e.Payload)
			ce := ConsoleEntry{EntryView: EntryView{Seq: e.Seq, Time: time.Unix(0, e.Time).UTC(), Kind: core.Kind(e.Kind).String(), Hash: e.Hash.String(), Summary: "does not decode"}}
			if derr == nil {
				ce.Summary = core.Describe(c)
				ce.Actor, ce.Customer = entryActor(c), entryCustomer(c)
			}
			if f.keeps(ce) {
				chunk = append(chunk, ce)
			}
			return nil
		})
		if err != nil {
			return nil, 0, scanned, err
		}
		scanned += hi - lo + 1
		slices.Reverse(chunk)
		for _, ce := range chunk {
			if len(items) == limit {
				break
			}
			items = append(items, ce)
		}
		if len(items) == limit {
			older = items[len(items)-1].Seq
			return items, older, scanned, nil
		}
		hi = lo - 1
	}
	if hi >= 1 {
		older = hi + 1
	}
	return items, older, scanned, nil
}

func (f journalFilter) keeps(e ConsoleEntry) bool {
	if f.Kind != "" && e.Kind != f.Kind {
		return false
	}
	if f.Actor != "" && !strings.EqualFold(e.Actor, f.Actor) && !strings.Contains(strings.ToLower(e.Actor), strings.ToLower(f.Actor)) {
		return false
	}
	if f.Customer != 0 && e.Customer != f.Customer {
		return false
	}
	return true
}

// actorFields are the fields that name who asked for a command, in the
// order they are looked for: the command's own, then its record's (a
// request's requester, an incident's detector).
var actorFields = []string{"Actor", "Decider", "Requester", "By", "Detector", "Who", "Operator"}

// entryActor is who asked for c: an operator, a channel ("customer",
// "watcher") or a detector; "" when the command names nobody.
func entryActor(c core.Command) string {
	v := reflect.ValueOf(c)
	for depth := 0; depth < 2 && v.IsValid(); depth++ {
		for v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return ""
		}
		for _, name := range actorFields {
			if fv := v.FieldByName(name); fv.IsValid() && fv.Kind() == reflect.String && fv.String() != "" {
				return fv.String()
			}
		}
		// One level down: the record the command carries (Request,
		// Incident, Ceremony, Plan).
		var next reflect.Value
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.Kind() == reflect.Struct && v.Type().Field(i).IsExported() {
				next = f
				break
			}
		}
		v = next
	}
	return ""
}

var ownerType = reflect.TypeFor[ledger.OwnerID]()

// entryCustomer is the customer c is about (its Customer field), 0 if
// none or several.
func entryCustomer(c core.Command) ledger.OwnerID {
	v := reflect.ValueOf(c)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	for _, name := range []string{"Customer", "Owner"} {
		if fv := v.FieldByName(name); fv.IsValid() && fv.Type() == ownerType {
			return ledger.OwnerID(fv.Uint())
		}
	}
	// A sign-up or a customer record carries it one level down.
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Struct && v.Type().Field(i).IsExported() {
			if fv := f.FieldByName("ID"); fv.IsValid() && fv.Type() == ownerType && v.Type().Field(i).Name == "Customer" {
				return ledger.OwnerID(fv.Uint())
			}
		}
	}
	return 0
}

// journalKinds are the command kinds, sorted, for the filter's choice.
func journalKinds() []string {
	var out []string
	for k := core.Kind(1); k < 200; k++ {
		if s := k.String(); !strings.HasPrefix(s, "kind(") {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) consoleJournal(w http.ResponseWriter, r *http.Request) {
	v, _, ok := s.consoleUser(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := journalFilter{Kind: strings.TrimSpace(q.Get("kind")), Actor: strings.TrimSpace(q.Get("actor"))}
	if c := strings.TrimSpace(q.Get("customer")); c != "" {
		n, err := strconv.ParseUint(c, 10, 64)
		if err != nil || n == 0 || ledger.OwnerID(n) >= ledger.OwnerHouseMin {
			v.Error = "customer: a customer's number"
		} else {
			f.Customer = ledger.OwnerID(n)
		}
	}
	if f.Kind != "" && !slices.Contains(journalKinds(), f.Kind) {
		v.Error, f.Kind = "kind: no such entry kind", ""
	}
	var before uint64
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseUint(b, 10, 64)
		if err != nil {
			v.Error = "before: an entry number"
		}
		before = n
	}
	items, older, scanned, err := s.consoleJournalPage(before, consoleJournalLimit, f)
	if err != nil {
		v.Error = publicErr(err).Error()
	}
	head, _, _ := s.core.Journal().Head()
	d := map[string]any{"Items": items, "Filter": f, "Kinds": journalKinds(), "Head": countText(head), "Scanned": countText(scanned), "Filtered": !f.empty()}
	if older != 0 {
		u := fmt.Sprintf("/console/journal?before=%d&kind=%s&actor=%s", older, url.QueryEscape(f.Kind), url.QueryEscape(f.Actor))
		if f.Customer != 0 {
			u += fmt.Sprintf("&customer=%d", f.Customer)
		}
		d["Older"] = u
	}
	if before != 0 {
		d["Newest"] = true
	}
	if q.Get("verify") == "1" {
		vv := s.verify()
		d["Verify"] = &vv
	}
	v.Title, v.Nav, v.Data = "Journal", "journal", d
	s.render(w, "journal", http.StatusOK, v)
}
