package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Guessing is bounded three ways. The journal counts failed logins and
// failed step-up codes per customer (and step-ups per session) and locks
// them out for a growing period (people.LockPeriod): that bound holds
// whatever happens to this process. In front of it, token buckets here
// bound how fast anyone may try at all, per source address and per
// account, before a password is hashed or a code checked; and a gate
// bounds the argon2id hashes running at once, so that a flood of sign-ups
// or logins is refused with 429 instead of queueing without end (each
// hash takes 64 MiB).

// Rate is a token bucket: Burst attempts at once, then one every Every.
type Rate struct {
	Burst int
	Every time.Duration
}

// PerMinute is a bucket of n at once and n a minute.
func PerMinute(n int) Rate {
	if n <= 0 {
		n = 1
	}
	return Rate{Burst: n, Every: time.Minute / time.Duration(n)}
}

// Limits are the token buckets of the guessable routes. A zero Rate takes
// the default.
type Limits struct {
	LoginAddr, LoginAccount   Rate // POST /v1/customers/login
	SignUpAddr, SignUpAccount Rate // POST /v1/customers
	StepUpAddr                Rate // every X-TOTP step-up, by source
	StepUpSession             Rate // ... by session
	StepUpCustomer            Rate // ... by customer
	// Hashes bounds the argon2id hashes running at once, HashQueue the
	// requests waiting for one; beyond, 429.
	Hashes, HashQueue int
	// HashWait bounds how long a request waits for a hash slot.
	HashWait time.Duration
}

// DefaultLimits are the limits in service.
var DefaultLimits = Limits{
	LoginAddr: PerMinute(20), LoginAccount: PerMinute(10),
	SignUpAddr: Rate{Burst: 5, Every: 20 * time.Second}, SignUpAccount: Rate{Burst: 2, Every: time.Minute},
	StepUpAddr: PerMinute(30), StepUpSession: PerMinute(5), StepUpCustomer: PerMinute(10),
	Hashes: 2, HashQueue: 16, HashWait: 10 * time.Second,
}

func (l *Limits) fill(loginRate int) {
	d := DefaultLimits
	if loginRate > 0 {
		d.LoginAddr = PerMinute(loginRate)
		if loginRate > DefaultLimits.LoginAddr.Burst {
			// A test or benchmark lifting the address limit lifts the
			// account's with it.
			d.LoginAccount = PerMinute(loginRate)
		}
	}
	for _, x := range []struct{ r, def *Rate }{
		{&l.LoginAddr, &d.LoginAddr}, {&l.LoginAccount, &d.LoginAccount}, {&l.SignUpAddr, &d.SignUpAddr},
		{&l.SignUpAccount, &d.SignUpAccount}, {&l.StepUpAddr, &d.StepUpAddr}, {&l.StepUpSession, &d.StepUpSession},
		{&l.StepUpCustomer, &d.StepUpCustomer},
	} {
		if x.r.Burst <= 0 || x.r.Every <= 0 {
			*x.r = *x.def
		}
	}
	if l.Hashes <= 0 {
		l.Hashes = d.Hashes
	}
	if l.HashQueue < 0 {
		l.HashQueue = 0
	} else if l.HashQueue == 0 {
		l.HashQueue = d.HashQueue
	}
	if l.HashWait <= 0 {
		l.HashWait = d.HashWait
	}
}

// maxLimiterKeys bounds the keys one limiter tracks; a full table first
// forgets the keys whose bucket refilled (they are as good as new), and
// refuses new keys while none has.
const maxLimiterKeys = 100_000

// limiter is a table of token buckets, kept as GCRA's theoretical arrival
// times: one time per key.
type limiter struct {
	mu   sync.Mutex
	rate Rate
	tat  map[string]time.Time
}

func newLimiter(r Rate) *limiter { return &limiter{rate: r, tat: map[string]time.Time{}} }

// take counts an attempt by key at now. It reports whether it is within
// the bucket and, if not, when the next one will be.
func (l *limiter) take(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, ok := l.tat[key]
	if !ok && len(l.tat) >= maxLimiterKeys {
		for k, v := range l.tat {
			if !v.After(now) {
				delete(l.tat, k)
			}
		}
		if len(l.tat) >= maxLimiterKeys {
			return false, l.rate.Every
		}
	}
	if tat.Before(now) {
		tat = now
	}
	// The bucket holds Burst: an attempt fits while its arrival time is
	// at most Burst-1 intervals ahead of now.
	ahead := time.Duration(l.rate.Burst-1) * l.rate.Every
	if tat.Sub(now) > ahead {
		return false, tat.Sub(now) - ahead
	}
	l.tat[key] = tat.Add(l.rate.Every)
	return true, 0
}

// allow is take without the wait.
func (l *limiter) allow(key string, now time.Time) bool {
	ok, _ := l.take(key, now)
	return ok
}

// errTooMany is an attempt beyond a bucket; Wait is when to try again.
type errTooMany struct {
	What string
	Wait time.Duration
}

func (e *errTooMany) Error() string {
	return fmt.Sprintf("too many %s; try again in %s", e.What, e.Wait.Round(time.Second))
}

// errBusy refuses a request that would wait too long for a password hash.
var errBusy = errors.New("the server is busy hashing passwords; try again shortly")

// writeTooMany answers 429 with Retry-After.
func writeTooMany(w http.ResponseWriter, title, detail string, wait time.Duration) {
	writeProblemWait(w, Problem{Status: http.StatusTooManyRequests, Title: title, Detail: detail}, wait)
}

// hashGate bounds the argon2id hashes at once: Hashes run, HashQueue
// wait (at most HashWait each), the rest are refused at once.
type hashGate struct {
	// count is the hashes run, for tests.
	count   atomic.Int64
	slots   chan struct{}
	mu      sync.Mutex
	waiting int
	queue   int
	wait    time.Duration
}

func newHashGate(l Limits) *hashGate {
	return &hashGate{slots: make(chan struct{}, l.Hashes), queue: l.HashQueue, wait: l.HashWait}
}

// do runs f (a hash) in a slot, or returns errBusy.
func (g *hashGate) do(ctx context.Context, f func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		g.mu.Lock()
		if g.waiting >= g.queue {
			g.mu.Unlock()
			return errBusy
		}
		g.waiting++
		g.mu.Unlock()
		t := time.NewTimer(g.wait)
		var err error
		select {
		case g.slots <- struct{}{}:
		case <-t.C:
			err = errBusy
		case <-ctx.Done():
			err = errBusy
		}
		t.Stop()
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		if err != nil {
			return err
		}
	}
	defer func() { <-g.slots }()
	g.count.Add(1)
	f()
	return nil
}

// clientAddr is the address rate limits count by: the peer's IP, an IPv6
// peer by its /64 (one host's share of a network).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// phantoms keeps, for names that are nobody's, the same count of failed
// logins and the same lock-out the journal keeps for customers, so that a
// locked answer says nothing about whether a name exists.
type phantoms struct {
	mu sync.Mutex
	m  map[string]*phantom
}

type phantom struct {
	failed, lockouts int
	lockedUntil      time.Time
}

// maxPhantoms bounds the names tracked; a full table forgets those not
// locked.
const maxPhantoms = 100_000

func (p *phantoms) locked(name string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	x, ok := p.m[name]
	return ok && x.lockedUntil.After(now)
}

func (p *phantoms) fail(name string, now time.Time, maxFailed int, period func(int) time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*phantom{}
	}
	x, ok := p.m[name]
	if !ok {
		if len(p.m) >= maxPhantoms {
			for k, v := range p.m {
				if !v.lockedUntil.After(now) {
					delete(p.m, k)
				}
			}
			if len(p.m) >= maxPhantoms {
				return
			}
		}
		x = &phantom{}
		p.m[name] = x
	}
	x.failed++
	if x.failed >= maxFailed {
		x.lockedUntil, x.failed = now.Add(period(x.lockouts)), 0
		x.lockouts++
	}
}
