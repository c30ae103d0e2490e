package api

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/people"
	"kinko/internal/wallet"
)

// registerDeploy registers what a deployment's operators and machinery
// read: the registered wallets, and the core's readiness.
func (s *Server) registerDeploy() {
	s.handle("GET", "/readyz", true, s.ready)
	s.handle("GET", "/v1/wallets", true, s.operatorOnly(s.listWallets))
}

// ReadyView is the answer of GET /readyz: ready, or why not.
type ReadyView struct {
	Status  string   `json:"status"`
	Reasons []string `json:"reasons,omitempty"`
}

// ready answers 200 when the core can serve (Config.Ready says nothing
// is wrong), 503 with the reasons when it cannot. /healthz is liveness:
// the process answers.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	var reasons []string
	if s.cfg.Ready != nil {
		reasons = s.cfg.Ready()
	}
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, ReadyView{Status: "not ready", Reasons: reasons})
		return
	}
	writeJSON(w, http.StatusOK, ReadyView{Status: "ready"})
}

// WalletView is a registered wallet as GET /v1/wallets shows it, with
// what the offline machines show to compare it with: the keys'
// fingerprints and the first receive address.
type WalletView struct {
	ID           uint32   `json:"id"`
	Kind         string   `json:"kind"`
	Asset        string   `json:"asset"`
	Descriptor   string   `json:"descriptor"`
	Owner        string   `json:"owner"`
	NextIndex    uint32   `json:"next_index"`
	NextChange   uint32   `json:"next_change"`
	Fingerprints []string `json:"fingerprints,omitempty"`
	FirstAddress string   `json:"first_address,omitempty"`
}

func (s *Server) listWallets(w http.ResponseWriter, r *http.Request, _ Principal) {
	items := []WalletView{}
	s.core.Read(func(st *core.State) {
		for _, wl := range st.Custody.Wallets() {
			v := WalletView{ID: wl.ID, Kind: wl.Kind.String(), Descriptor: wl.Descriptor, Owner: strconv.FormatUint(uint64(wl.Owner), 10),
				NextIndex: wl.NextIndex, NextChange: wl.NextChange}
			if a, ok := st.Ledger.Asset(wl.Asset); ok {
				v.Asset = a.Code
			}
			if d, err := wallet.Parse(wl.Descriptor, s.cfg.Net); err == nil {
				for _, k := range d.Keys {
					v.Fingerprints = append(v.Fingerprints, hex.EncodeToString(k.Fingerprint[:]))
				}
				if a, _, err := d.Address(0, 0); err == nil {
					v.FirstAddress = a.EncodeAddress()
				}
			}
			items = append(items, v)
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

// checkShown refuses a register_wallet request filed through the API
// whose descriptor is not a wallet of the core's network in its canonical
// form, or whose shown addresses and fingerprints are not the
// descriptor's: what approvers compare with the offline machines must be
// what will be registered. Other commands pass.
func (s *Server) checkShown(cmd core.Command) error {
	o, ok := cmd.(core.OpenRequest)
	if !ok || o.Request.Kind != core.KindRegisterWalletRequest {
		return nil
	}
	p, err := core.DecodeRegisterWallet(o.Request.Payload)
	if err != nil {
		return err
	}
	d, err := wallet.Parse(p.Wallet.Descriptor, s.cfg.Net)
	if err != nil {
		return fmt.Errorf("%w: descriptor: %v", people.ErrInvalid, err)
	}
	if d.String() != p.Wallet.Descriptor {
		return fmt.Errorf("%w: descriptor not in its canonical form %s", people.ErrInvalid, d.String())
	}
	if len(p.Addresses) == 0 {
		return fmt.Errorf("%w: a register_wallet request shows the descriptor's first receive addresses", people.ErrInvalid)
	}
	for i, got := range p.Addresses {
		a, _, err := d.Address(0, uint32(i))
		if err != nil {
			return fmt.Errorf("%w: address %d: %v", people.ErrInvalid, i, err)
		}
		if a.EncodeAddress() != got {
			return fmt.Errorf("%w: shown address %d is %s; the descriptor's is %s", people.ErrInvalid, i, got, a.EncodeAddress())
		}
	}
	if len(p.Fingerprints) != len(d.Keys) {
		return fmt.Errorf("%w: %d fingerprints shown for %d keys", people.ErrInvalid, len(p.Fingerprints), len(d.Keys))
	}
	for i, k := range d.Keys {
		if want := hex.EncodeToString(k.Fingerprint[:]); !strings.EqualFold(p.Fingerprints[i], want) {
			return fmt.Errorf("%w: shown fingerprint %d is %s; the descriptor's is %s", people.ErrInvalid, i, p.Fingerprints[i], want)
		}
	}
	return nil
}

// Who names who a request acts as, for the access log: "operator NAME",
// "customer N", "signer", "watcher", "stream" (the journal stream's
// token), or "-". It never returns a token or its hash.
func (s *Server) Who(r *http.Request) string {
	a := r.Header.Get("Authorization")
	tok, bearer := strings.CutPrefix(a, "Bearer ")
	if bearer {
		for _, t := range []struct{ tok, who string }{{s.signerToken, "signer"}, {s.watcherToken, "watcher"}, {s.streamToken, "stream"}} {
			if subtle.ConstantTimeCompare([]byte(tok), []byte(t.tok)) == 1 {
				return t.who
			}
		}
	} else if c, err := r.Cookie(cookieName); err == nil {
		tok = c.Value
	}
	if tok == "" || len(tok) > 128 {
		return "-"
	}
	h := auth.HashToken(tok)
	var ss people.Session
	var ok bool
	s.core.Read(func(st *core.State) { ss, ok = st.People.Session(h) })
	if !ok || !ss.Valid(s.now().UnixNano()) {
		return "-"
	}
	if ss.Kind == people.SessionOperator {
		return "operator " + ss.Operator
	}
	return "customer " + strconv.FormatUint(uint64(ss.Customer), 10)
}
