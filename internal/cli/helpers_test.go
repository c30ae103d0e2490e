package cli

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"kinko/internal/api"
	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/operators"
	"kinko/internal/passkey"
)

// foundCrew bootstraps the crew's operators into an open core and writes
// their CLI keys under keyDir; it returns the path of an operator's key.
func foundCrew(t *testing.T, c *core.Core, keyDir string) func(name string) string {
	t.Helper()
	team := operators.Crew("cli test")
	for _, cmd := range team.Bootstrap(time.Now()) {
		if o, err := c.Submit(context.Background(), time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(cmd.Kind(), err, o.Err)
		}
	}
	for _, o := range team.Operators() {
		if err := passkey.SaveSoftKey(filepath.Join(keyDir, o.Name+".key"), o.Key); err != nil {
			t.Fatal(err)
		}
	}
	return func(name string) string { return filepath.Join(keyDir, name+".key") }
}

// registerWallets registers ws through the crew's two admins (foundCrew
// first): aiko asks, ren approves.
func registerWallets(t *testing.T, c *core.Core, ws ...custody.Wallet) {
	t.Helper()
	for _, cmd := range operators.Crew("cli test").RegisterWallets(time.Now(), ws...) {
		if o, err := c.Submit(context.Background(), time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(cmd.Kind(), err, o.Err)
		}
	}
}

// serveCore serves dir's core and API on loopback until stop (also at
// the test's end).
func serveCore(t *testing.T, dir string) (string, func()) {
	t.Helper()
	c, err := core.Open(context.Background(), core.Config{Dir: dir, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Core: c, DataDir: dir, Argon2: auth.TestArgon2})
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			hs.Close()
			srv.Close()
			c.Close()
		}
	}
	t.Cleanup(stop)
	return hs.URL, stop
}
