package cli

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"kinko/internal/core"
	"kinko/internal/demo"
	"kinko/internal/drill"
	"kinko/internal/operators"
	"kinko/internal/secrets"
)

// drillDone ends a drill's streamed output when it succeeded.
const drillDone = "drill: done"

// devDrillToken reads or makes drill.token (0600) in the dev's secrets
// directory: what `kinko drill --dev` shows to run a drill inside a
// running kinko dev.
func devDrillToken(sec secrets.Dir) (string, error) {
	path := sec.File("drill.token")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return tok, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

// devAuthorized answers a request to the dev's own routes that does not
// come from this machine with the dev token (DATA.secrets/drill.token),
// and reports whether it does.
func devAuthorized(w http.ResponseWriter, r *http.Request, token string) bool {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		http.Error(w, "the dev's own routes answer this machine only", http.StatusForbidden)
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(token)) != 1 {
		http.Error(w, "the dev token (DATA.secrets/drill.token) is needed", http.StatusUnauthorized)
		return false
	}
	return true
}

// flushWriter sends each write to the client at once.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.f.Flush()
	return n, err
}

// devDrillHandler runs a drill inside the running kinko dev, on its core,
// node, wallets, watcher and demo operators, streaming what happens. Only
// from loopback, with the drill token; one drill at a time.
func devDrillHandler(c *core.Core, chain *demo.Chain, signers *demo.Signers, dir, token string, team *operators.Team, log *slog.Logger) http.HandlerFunc {
	var mu sync.Mutex
	return func(w http.ResponseWriter, r *http.Request) {
		if !devAuthorized(w, r, token) {
			return
		}
		name := r.PathValue("name")
		q := r.URL.Query()
		o := drill.Options{Customers: 1000, RateYen: 10_000_000, Seed: 1, Log: log}
		for _, f := range []struct {
			key string
			set func(string) error
		}{
			{"customers", func(v string) (err error) { o.Customers, err = strconv.Atoi(v); return }},
			{"rate", func(v string) (err error) { o.RateYen, err = strconv.ParseUint(v, 10, 64); return }},
			{"seed", func(v string) (err error) { o.Seed, err = strconv.ParseUint(v, 10, 64); return }},
		} {
			if v := q.Get(f.key); v != "" {
				if err := f.set(v); err != nil {
					http.Error(w, fmt.Sprintf("%s=%q: %v", f.key, v, err), http.StatusBadRequest)
					return
				}
			}
		}
		play := map[string]func(*drill.Env) (*drill.Result, error){}
		flusher, _ := w.(http.Flusher)
		var out io.Writer = w
		if flusher != nil {
			out = flushWriter{w, flusher}
		}
		env := &drill.Env{Core: c, CoreDir: dir, Node: chain.Node, KeyDir: chain.KeyDir, Passphrase: demo.KeyPassphrase,
			Operators: [2]string{demo.Operators[0].Name, demo.Operators[1].Name}, Admin: demo.Operators[3].Name, Team: team, Confirmations: demo.Confirmations}
		// A drill started finishes even if its caller goes away: stopping
		// half-way would leave the dev halted.
		ctx := context.WithoutCancel(r.Context())
		play["coincheck"] = func(env *drill.Env) (*drill.Result, error) { return drill.Play(ctx, env, o, out) }
		play["bitpoint"] = func(env *drill.Env) (*drill.Result, error) { return drill.PlayBitPoint(ctx, env, o, out) }
		run, ok := play[name]
		if !ok {
			http.Error(w, "drills: coincheck, bitpoint", http.StatusNotFound)
			return
		}
		if !mu.TryLock() {
			http.Error(w, "a drill is running", http.StatusConflict)
			return
		}
		defer mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		res, err := run(env)
		if err != nil {
			fmt.Fprintf(out, "drill failed: %v\n", err)
			return
		}
		// The dev's co-signer keeps the watcher's halt until it is lifted
		// on its host: the drill over, the dev lifts it, as an operator
		// would with kinko cosigner lift.
		for _, h := range signers.Cosigner.Halts() {
			if err := signers.Cosigner.Lift(h.Asset, "drill", "the drill is over"); err == nil {
				fmt.Fprintf(out, "co-signer halt of %s (by %s) lifted on the dev's host: the drill is over\n", h.Asset, h.By)
			}
		}
		fmt.Fprintln(out)
		res.Report.WriteMarkdown(out)
		fmt.Fprint(out, "\n## Customer notice (draft)\n\n")
		res.Report.WriteNotice(out)
		fmt.Fprintln(out, drillDone)
	}
}

// readDevToken reads the drill token of a running dev's data directory
// dir, from its default secrets directory (or DATA/secrets, as before).
func readDevToken(dir string) ([]byte, error) {
	sec, err := secrets.Open("", dir, nil)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(sec.File("drill.token"))
}
