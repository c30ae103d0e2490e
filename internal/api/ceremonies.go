package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/btcsuite/btcd/btcutil/psbt"

	"kinko/internal/ceremony"
	"kinko/internal/core"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
)

// CeremonyRequest is the body of POST /v1/ceremonies: prepare the refill or
// sweep between the hot and cold wallets ("tiers"), or the cold path's
// transaction paying queued withdrawals ("cold-withdrawals"), or journal
// an Ethereum ceremony's SafeTx ("safe", with Safe; no fee rate).
type CeremonyRequest struct {
	Purpose     string               `json:"purpose"`
	ID          string               `json:"id"`
	FeeRate     int64                `json:"fee_rate"`
	Withdrawals []string             `json:"withdrawals,omitempty"`
	Safe        *SafeCeremonyRequest `json:"safe,omitempty"`
}

// CeremonyView is what the offline signers need: the request file's
// content (`kinko cold sign --request`), and what was journaled.
type CeremonyView struct {
	ID      string         `json:"id"`
	Purpose string         `json:"purpose"`
	TxID    string         `json:"txid"`
	PSBT    string         `json:"psbt"`
	Wallets []wallet.Named `json:"wallets"`
	Summary string         `json:"summary"`
}

// maxFeeRate bounds a ceremony's fee rate, satoshi per vbyte.
const maxFeeRate = 10_000

var errCeremony = errors.New("ceremony")

// PrepareCeremony plans a ceremony from the state with the registered
// wallets and journals it, its inputs reserved, as operator.
func (s *Server) PrepareCeremony(r *http.Request, operator string, req CeremonyRequest) (CeremonyView, error) {
	if req.Purpose == "safe" {
		return s.prepareSafeCeremony(r, operator, req)
	}
	if req.Safe != nil {
		return CeremonyView{}, fmt.Errorf("%w: safe is for purpose safe", errBadJSON)
	}
	if req.FeeRate <= 0 || req.FeeRate > maxFeeRate || req.ID == "" {
		return CeremonyView{}, fmt.Errorf("%w: an id and a fee rate of 1-%d sat/vB", errBadJSON, maxFeeRate)
	}
	var cmd core.Command
	var p *psbt.Packet
	var v CeremonyView
	var err error
	s.core.Read(func(st *core.State) {
		for _, w := range st.Custody.Wallets() {
			v.Wallets = append(v.Wallets, wallet.Named{ID: w.ID, Kind: w.Kind.String(), Descriptor: w.Descriptor})
		}
		if len(v.Wallets) == 0 {
			err = fmt.Errorf("%w: no wallets registered", errCeremony)
			return
		}
		var first *wallet.Descriptor
		if first, err = wallet.Parse(v.Wallets[0].Descriptor, s.cfg.Net); err != nil {
			return
		}
		var set *wallet.Set
		if set, err = wallet.NewSet(v.Wallets, first); err != nil {
			return
		}
		switch req.Purpose {
		case "tiers":
			var plan *ceremony.Plan
			if plan, err = ceremony.Tiers(st, set, reserves.DefaultPolicy, req.FeeRate, req.ID, operator); err != nil {
				return
			}
			c := plan.Command.Ceremony
			cmd, p, v.Purpose = plan.Command, plan.PSBT, string(c.Purpose)
			v.Summary = fmt.Sprintf("%s %s of %d base units (%d inputs reserved)", c.Purpose, c.ID, plan.Amount, len(c.Inputs))
		case "cold-withdrawals":
			var rb core.ReserveBatch
			if rb, p, err = ceremony.ColdWithdrawals(st, set, req.FeeRate, req.ID, req.Withdrawals); err != nil {
				return
			}
			cmd, v.Purpose = rb, "withdraw"
			v.Summary = fmt.Sprintf("cold batch %s paying %d withdrawals (%d inputs reserved)", rb.Batch.ID, len(rb.Batch.Withdrawals), len(rb.Batch.Inputs))
		default:
			err = fmt.Errorf("%w: purpose is tiers or cold-withdrawals", errBadJSON)
		}
	})
	if err != nil {
		if errors.Is(err, errBadJSON) {
			return CeremonyView{}, err
		}
		return CeremonyView{}, fmt.Errorf("%w: %w", errCeremonyRefused, err)
	}
	if _, err := s.submit(r.Context(), cmd); err != nil {
		return CeremonyView{}, err
	}
	v.ID, v.TxID = req.ID, p.UnsignedTx.TxHash().String()
	v.PSBT, _ = wallet.Encode(p)
	return v, nil
}

// errCeremonyRefused is a ceremony the state does not allow (nothing to
// refill, no wallet, no queued withdrawal): the operator sees why.
var errCeremonyRefused = errors.New("ceremony refused")

func (s *Server) registerCeremonies() {
	s.handle("POST", "/v1/ceremonies", true, s.idempotent(func(w http.ResponseWriter, r *http.Request, body []byte) {
		p, err := s.operator(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.writer(p); err != nil {
			s.fail(w, r, err)
			return
		}
		var req CeremonyRequest
		if err := decodeStrict(body, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		v, err := s.PrepareCeremony(r, p.Session.Operator, req)
		if errors.Is(err, errCeremonyRefused) {
			writeProblem(w, http.StatusUnprocessableEntity, "ceremony refused", err.Error())
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, v)
	}))
}
