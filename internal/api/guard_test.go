package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/people"
)

// guessCode returns the i-th guess of an attacker walking the code space
// who skips the codes valid now (a guess that happens to be right would
// only end the test early; what is measured is how many wrong ones get
// through).
func guessCode(secret string, now time.Time, i int) string {
	valid := map[string]bool{}
	for d := -auth.Skew; d <= auth.Skew; d++ {
		valid[auth.Code(secret, now.Add(time.Duration(d*auth.Period)*time.Second))] = true
	}
	for {
		c := fmt.Sprintf("%06d", i)
		if !valid[c] {
			return c
		}
		i++
	}
}

// TestStepUpBruteForceLockedOut: an attacker holding a customer's session
// (not their authenticator) guesses step-up codes on POST
// /v1/me/intent-keys as fast as the server answers. Before, 1.2 million
// guesses went through in 71 seconds. Measured here: how many wrong codes
// the server checks before it stops, how long the customer's step-ups
// stay locked, and how the lock-out grows.
func TestStepUpBruteForceLockedOut(t *testing.T) {
	e := newEnv(t)
	_, stolen := e.signUp("victim@example.jp")
	secret := e.secrets["victim@example.jp"]
	pub, _, _ := ed25519.GenerateKey(nil)
	body := IntentKeyRequest{PublicKey: hex.EncodeToString(pub)}

	checked, statuses := 0, map[int]int{}
	var lockStart time.Time
	for i := 0; i < 1000; i++ {
		r := e.do("POST", "/v1/me/intent-keys", stolen, body, "X-TOTP", guessCode(secret, e.clock.Now(), i))
		statuses[r.status]++
		if r.status == 403 {
			checked++
			lockStart = e.clock.Now()
		}
		if r.status == 201 {
			t.Fatalf("guess %d registered the attacker's key", i)
		}
		if r.status != 403 && r.status != 429 && r.status != 401 {
			t.Fatalf("guess %d = %d %s", i, r.status, r.body)
		}
	}
	t.Logf("1000 guesses on one session: %d codes checked (403), answers %v", checked, statuses)
	if checked > people.MaxFailed {
		t.Fatalf("%d wrong codes checked; want at most %d", checked, people.MaxFailed)
	}
	// The session is over after MaxFailed wrong codes.
	if r := e.do("GET", "/v1/me", stolen, nil); r.status != 401 {
		t.Fatalf("the attacker's session after the guesses = %d; want 401", r.status)
	}
	// The customer's step-ups are locked in every session, even with the
	// right code, for LockFor.
	r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "victim@example.jp", Password: testPassword, TOTP: e.code("victim@example.jp")})
	var lr LoginResponse
	r.json(t, &lr)
	if r := e.do("POST", "/v1/me/intent-keys", lr.Token, body, "X-TOTP", e.code("victim@example.jp")); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("a right code while locked = %d %s; want 429 with Retry-After", r.status, r.body)
	}
	// Find the end of the lock-out by the minute.
	var lockedFor time.Duration
	for {
		e.clock.Add(time.Minute)
		if r := e.do("POST", "/v1/me/intent-keys", lr.Token, body, "X-TOTP", auth.Code(secret, e.clock.Now())); r.status == 201 {
			lockedFor = e.clock.Now().Sub(lockStart)
			break
		} else if r.status != 429 {
			t.Fatalf("while locked = %d %s", r.status, r.body)
		}
		if e.clock.Now().Sub(lockStart) > 2*time.Hour {
			t.Fatal("still locked after 2 hours")
		}
	}
	t.Logf("step-ups locked for %v after %d wrong codes", lockedFor, people.MaxFailed)
	if lockedFor < time.Duration(people.LockFor) || lockedFor > time.Duration(people.LockFor)+time.Minute {
		t.Fatalf("locked for %v; want about %v", lockedFor, time.Duration(people.LockFor))
	}

	// An attacker who can open sessions (they have the password and,
	// say, an old code) guesses on for six hours, a new session whenever
	// one ends: every wrong code is counted against the customer, each
	// lock-out twice the one before.
	e2 := newEnv(t)
	_, tok := e2.signUp("target@example.jp")
	sec2 := e2.secrets["target@example.jp"]
	start := e2.clock.Now()
	wrong, sessions, i := 0, 1, 0
	var lockouts []time.Duration
	var lockedAt time.Time
	for e2.clock.Now().Sub(start) < 6*time.Hour {
		r := e2.do("POST", "/v1/me/intent-keys", tok, body, "X-TOTP", guessCode(sec2, e2.clock.Now(), i))
		i++
		switch r.status {
		case 403:
			wrong++
			if !lockedAt.IsZero() {
				lockouts = append(lockouts, e2.clock.Now().Sub(lockedAt))
				lockedAt = time.Time{}
			}
		case 429:
			if lockedAt.IsZero() {
				lockedAt = e2.clock.Now()
			}
			e2.clock.Add(time.Minute)
		case 401:
			// A new session, as the attacker holding the password would.
			e2.clock.Add(time.Second)
			tok = e2.loginCustomer("target@example.jp")
			sessions++
		default:
			t.Fatalf("guess %d = %d %s", i, r.status, r.body)
		}
	}
	t.Logf("6 hours of guessing: %d wrong codes checked in %d sessions; lock-outs between bursts %v", wrong, sessions, lockouts)
	if wrong > 5*people.MaxFailed {
		t.Fatalf("%d wrong codes checked in 6 hours; want at most %d (15m, 30m, 1h, 2h lock-outs)", wrong, 5*people.MaxFailed)
	}
	for j := 1; j < len(lockouts); j++ {
		if lockouts[j] < lockouts[j-1]*3/2 {
			t.Fatalf("lock-outs %v do not grow", lockouts)
		}
	}
}

// loginCustomer logs a customer in with a fresh code and returns the
// token.
func (e *env) loginCustomer(email string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: email, Password: testPassword, TOTP: e.code(email)})
	if r.status != 200 {
		e.t.Fatalf("login %s = %d %s", email, r.status, r.body)
	}
	var lr LoginResponse
	r.json(e.t, &lr)
	return lr.Token
}

// from sends a request to the server as if from addr (the handler sees
// that RemoteAddr), as a reverse proxy's peers would arrive.
func (e *env) from(addr, method, path string, body any) *httptest.ResponseRecorder {
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		b = mustJSON(v)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	req.RemoteAddr = addr + ":40000"
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return w
}

func mustJSON(v any) []byte {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestRateLimitsMeasured measures, on the server's clock, how many logins
// and sign-ups one address gets at once and then per minute before 429,
// and what an account gets across many addresses.
func TestRateLimitsMeasured(t *testing.T) {
	e := newEnv(t)
	e.signUp("rate@example.jp")
	burst := func(n int, f func(i int) int) (ok int, first429 int) {
		first429 = -1
		for i := 0; i < n; i++ {
			switch st := f(i); st {
			case 429:
				if first429 < 0 {
					first429 = i
				}
			default:
				ok++
			}
		}
		return
	}
	// Logins from one address, at one instant.
	ok, at := burst(100, func(i int) int {
		return e.from("192.0.2.1", "POST", "/v1/customers/login", LoginRequest{Email: fmt.Sprintf("nobody%d@example.jp", i), Password: "wrong password", TOTP: "000000"}).Code
	})
	t.Logf("logins from one address at once: %d answered, 429 from attempt %d", ok, at+1)
	if ok != DefaultLimits.LoginAddr.Burst {
		t.Fatalf("%d logins answered at once; want %d", ok, DefaultLimits.LoginAddr.Burst)
	}
	// Then one per Every: over a minute, one each 3 seconds.
	got := 0
	for s := 0; s < 60; s++ {
		e.clock.Add(time.Second)
		if e.from("192.0.2.1", "POST", "/v1/customers/login", LoginRequest{Email: fmt.Sprintf("later%d@example.jp", s), Password: "wrong password", TOTP: "000000"}).Code != 429 {
			got++
		}
	}
	t.Logf("logins from one address over the next minute, one a second asked: %d answered", got)
	if got != 20 {
		t.Fatalf("%d logins a minute answered; want 20", got)
	}
	// One account from many addresses: 10 at once, then 10 a minute, and
	// the journal's lock-out at 5 failures besides.
	ok, at = burst(50, func(i int) int {
		return e.from(fmt.Sprintf("198.51.100.%d", i+1), "POST", "/v1/customers/login", LoginRequest{Email: "rate@example.jp", Password: "wrong password", TOTP: "000000"}).Code
	})
	t.Logf("one account from 50 addresses at once: %d not refused by the bucket or the lock, first 429 at attempt %d", ok, at+1)
	if ok != people.MaxFailed {
		t.Fatalf("%d answered; want %d (the lock-out)", ok, people.MaxFailed)
	}
	// Sign-ups from one address: 5 at once, then 3 a minute.
	ok, at = burst(20, func(i int) int {
		return e.from("203.0.113.7", "POST", "/v1/customers", SignUpRequest{Email: fmt.Sprintf("new%d@example.jp", i), Name: "N", Password: testPassword}).Code
	})
	t.Logf("sign-ups from one address at once: %d, first 429 at attempt %d", ok, at+1)
	if ok != DefaultLimits.SignUpAddr.Burst {
		t.Fatalf("%d sign-ups at once; want %d", ok, DefaultLimits.SignUpAddr.Burst)
	}
	got = 0
	for s := 0; s < 60; s++ {
		e.clock.Add(time.Second)
		if e.from("203.0.113.7", "POST", "/v1/customers", SignUpRequest{Email: fmt.Sprintf("later%d@example.jp", s), Name: "N", Password: testPassword}).Code == 201 {
			got++
		}
	}
	t.Logf("sign-ups from one address over the next minute: %d", got)
	if got != 3 {
		t.Fatalf("%d sign-ups a minute; want 3", got)
	}
	// IPv6 peers count by their /64.
	if clientAddr(&http.Request{RemoteAddr: "[2001:db8::1]:1"}) != clientAddr(&http.Request{RemoteAddr: "[2001:db8::ffff]:1"}) {
		t.Fatal("two addresses of one /64 count apart")
	}
}

// TestUnknownNamesLikeKnown: a name that is nobody's gets the same
// answers as a customer's, after the same work (one hash of the
// configured cost), and is locked out after the same failures.
func TestUnknownNamesLikeKnown(t *testing.T) {
	e := newEnv(t)
	e.signUp("known@example.jp")
	if !strings.Contains(e.srv.dummy, fmt.Sprintf("m=%d,t=%d,p=%d", auth.TestArgon2.Memory, auth.TestArgon2.Time, auth.TestArgon2.Threads)) {
		t.Fatalf("the dummy hash %q is not of the configured cost", e.srv.dummy)
	}
	try := func(email string) (int, string, int64) {
		before := e.srv.gate.count.Load()
		r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: email, Password: "not the password", TOTP: "000000"})
		var p Problem
		r.json(t, &p)
		return r.status, p.Title + ": " + p.Detail, e.srv.gate.count.Load() - before
	}
	for i := 0; i < people.MaxFailed+2; i++ {
		ks, kb, kh := try("known@example.jp")
		us, ub, uh := try("unknown@example.jp")
		if ks != us || kb != ub || kh != uh || kh != 1 {
			t.Fatalf("attempt %d: known %d %q (%d hashes), unknown %d %q (%d hashes)", i+1, ks, kb, kh, us, ub, uh)
		}
		if i >= people.MaxFailed && ks != 429 {
			t.Fatalf("attempt %d = %d; want 429 locked", i+1, ks)
		}
	}
}

// TestHashGate: the argon2id hashes at once are bounded, and a request
// beyond the gate's queue is refused at once, not queued.
func TestHashGate(t *testing.T) {
	g := newHashGate(Limits{Hashes: 1, HashQueue: 1, HashWait: time.Hour})
	hold, inside := make(chan struct{}), make(chan struct{})
	go g.do(context.Background(), func() { close(inside); <-hold })
	<-inside
	waiting := make(chan error, 1)
	go func() { waiting <- g.do(context.Background(), func() {}) }()
	for {
		g.mu.Lock()
		n := g.waiting
		g.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := g.do(context.Background(), func() { t.Error("ran beyond the gate") }); !errors.Is(err, errBusy) {
		t.Fatalf("a third hash = %v; want errBusy", err)
	}
	close(hold)
	if err := <-waiting; err != nil {
		t.Fatalf("the queued hash = %v", err)
	}
	// Through the API: a busy gate answers sign-ups and logins 429.
	e := newEnv(t)
	e.srv.gate = newHashGate(Limits{Hashes: 1, HashQueue: 0, HashWait: time.Hour})
	e.srv.gate.slots <- struct{}{} // one hash running
	if r := e.do("POST", "/v1/customers", "", SignUpRequest{Email: "busy@example.jp", Name: "B", Password: testPassword}); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("sign-up with the gate full = %d %s", r.status, r.body)
	}
	var n int
	e.core.Read(func(st *core.State) { n = st.People.CustomerCount() })
	if n != 0 {
		t.Fatalf("%d customers after a refused sign-up", n)
	}
}
