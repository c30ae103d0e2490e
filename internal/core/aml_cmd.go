package core

import (
	"sort"
	"strings"

	"kinko/internal/custody"
	"kinko/internal/people"
)

// Command kinds of the AML deny list.
const (
	KindDenyAddresses  Kind = 32
	KindReleaseDeposit Kind = 33
)

func init() {
	kindNames[KindDenyAddresses] = "deny_addresses"
	kindNames[KindReleaseDeposit] = "release_deposit"
}

// Denied is an address on the AML deny list: withdrawals to it are
// refused, deposits from it are held for review.
type Denied struct {
	Address  string `json:"address"`
	Reason   string `json:"reason"`
	Incident string `json:"incident,omitempty"`
	Actor    string `json:"actor"`
	Seq      uint64 `json:"seq"`
}

// DenyAddresses adds addresses to the deny list (as tracing finds them).
type DenyAddresses struct {
	Addresses []string
	Incident  string
	Actor     string
	Reason    string
}

// ReleaseDeposit releases a deposit held for review to the customer's
// available balance, after an operator looked at it.
type ReleaseDeposit struct {
	Outpoint custody.Outpoint
	Actor    string
	Reason   string
}

func (DenyAddresses) Kind() Kind                       { return KindDenyAddresses }
func (ReleaseDeposit) Kind() Kind                      { return KindReleaseDeposit }
func (c DenyAddresses) AppendPayload(b []byte) []byte  { return appendJSON(b, c) }
func (c ReleaseDeposit) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

// maxDenyBatch bounds the addresses of one command.
const maxDenyBatch = 10_000

func decodeAML(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindDenyAddresses:
		c, err = decodeJSON[DenyAddresses](p)
	case KindReleaseDeposit:
		c, err = decodeJSON[ReleaseDeposit](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

func (s *State) applyAML(cmd Command, t int64) (bool, any, error) {
	switch c := cmd.(type) {
	case DenyAddresses:
		if _, ok := s.Operator(c.Actor); !ok {
			return true, nil, people.ErrOperatorUnknown
		}
		if len(c.Addresses) == 0 || len(c.Addresses) > maxDenyBatch || strings.TrimSpace(c.Reason) == "" {
			return true, nil, invalid("deny_addresses: 1-%d addresses and a reason", maxDenyBatch)
		}
		for _, a := range c.Addresses {
			if a == "" || len(a) > 128 {
				return true, nil, invalid("deny_addresses: address %q", a)
			}
		}
		if s.AML == nil {
			s.AML = map[string]Denied{}
		}
		added := 0
		for _, a := range c.Addresses {
			if _, ok := s.AML[a]; !ok {
				s.AML[a] = Denied{Address: a, Reason: c.Reason, Incident: c.Incident, Actor: c.Actor, Seq: s.seq}
				added++
			}
		}
		return true, added, nil
	case ReleaseDeposit:
		if _, ok := s.Operator(c.Actor); !ok {
			return true, nil, people.ErrOperatorUnknown
		}
		if strings.TrimSpace(c.Reason) == "" {
			return true, nil, invalid("release_deposit: a reason")
		}
		return true, nil, s.Custody.ReleaseDeposit(s.Ledger, c.Outpoint, t)
	}
	return false, nil, nil
}

// DeniedList returns the deny list by address.
func (s *State) DeniedList() []Denied {
	out := make([]Denied, 0, len(s.AML))
	for _, d := range s.AML {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// IsDenied tells whether an address is on the deny list, and why.
func (s *State) IsDenied(address string) (Denied, bool) {
	d, ok := s.AML[address]
	return d, ok
}
