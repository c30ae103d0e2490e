package core

import (
	"context"
	"strings"
	"testing"

	"kinko/internal/controls"
	"kinko/internal/incident"
	"kinko/internal/journal"
)

// TestTimelineShowsOnlyWhatTookEffect: a halt of a switch that does not
// exist, a halt without a reason, a second halt of a halted switch and an
// incident without a detector are journaled (the journal keeps every
// command) but refused or without effect: the timeline leaves them out and
// keeps the halt and the incident that took effect.
func TestTimelineShowsOnlyWhatTookEffect(t *testing.T) {
	c := openCore(t, t.TempDir(), 0)
	defer c.Close()
	setupXEM(t, c, 1)
	good := controls.Switch{Asset: 4, Service: controls.Withdraw}
	for _, cmd := range []Command{
		Halt{Switch: controls.Switch{Asset: 99, Service: controls.Withdraw}, Actor: "watcher", Reason: "no such asset"},
		Halt{Switch: good, Actor: "watcher", Reason: ""},
		Halt{Switch: good, Actor: "watcher", Reason: "unexplained outflow"},
		Halt{Switch: good, Actor: "watcher", Reason: "seen again"},
		OpenIncident{Incident: incident.Incident{ID: "bad", Reason: "no detector"}},
		OpenIncident{Incident: incident.Incident{ID: "outflow-1", Asset: "XEM", Detector: "watcher", Reason: "unexplained outflow"}},
	} {
		if _, err := c.Submit(context.Background(), t0, cmd); err != nil {
			t.Fatal(err)
		}
	}
	var applied func(journal.Entry, Command) bool
	var names Names
	c.Read(func(st *State) { applied, names = Applied(st), NamesOf(st) })
	evs, err := Timeline(c.Journal(), 1, applied, names)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.What+": "+ev.Detail)
	}
	want := []string{"halt XEM:" + string(good.Service) + ": unexplained outflow", "incident outflow-1: unexplained outflow"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Timeline = %q; want %q", got, want)
	}
}
