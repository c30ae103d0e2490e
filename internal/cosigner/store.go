package cosigner

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"kinko/internal/withdraw"
)

// store is the co-signer's durable memory on its own host, beside the
// mirror of the journal: when it first saw each key and address, every
// transaction it signed (with the signatures, so a repeated request gets
// the same ones), and its own halts. Everything is read into memory at
// open; every write that a decision rests on is synced before the decision
// is acted on.
//
// Key layout:
//
//	'k' customer(8) pubkey(32)          -> first seen (unix nanoseconds, 8)
//	'a' customer(8) asset 0x00 address  -> first seen
//	't' txid(32)                        -> Signed (JSON); a SafeTx's EIP-712 hash for Ethereum
//	'h' asset                           -> Halt (JSON); asset "*" halts all
//	'c' customer(8) commitment          -> first seen of a credential change
type store struct {
	db   *pebble.DB
	sync *pebble.WriteOptions
}

// Signed is one transaction the co-signer signed: what it counted against
// its limits and what it returned.
type Signed struct {
	Time        time.Time                  `json:"time"`
	TxID        string                     `json:"txid"`
	Asset       string                     `json:"asset"`
	Withdrawals []string                   `json:"withdrawals"`
	Customers   map[uint64]withdraw.Amount `json:"customers"` // withdrawn, by customer
	// Out is everything that left the source wallet but its change:
	// withdrawals and payments to our other wallets. Fee is the network
	// fee.
	Out  withdraw.Amount `json:"out"`
	Fee  withdraw.Amount `json:"fee"`
	PSBT string          `json:"psbt"` // as returned, base64
	// Safe, Nonce and SafeSig are set for a Safe transaction (TxID is
	// then its EIP-712 hash): the Safe's address, the nonce signed at
	// (decimal) and the co-signer's signature r ‖ s ‖ v (hex). Fee is
	// gas limit × max fee per gas, in wei.
	Safe    string `json:"safe,omitempty"`
	Nonce   string `json:"nonce,omitempty"`
	SafeSig string `json:"safe_sig,omitempty"`
}

// Halt is one of the co-signer's own halts.
type Halt struct {
	Asset  string    `json:"asset"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	Time   time.Time `json:"time"`
}

// AllAssets is the asset of a halt of everything (a broken history).
const AllAssets = "*"

func openStore(dir string, noSync bool) (*store, error) {
	db, err := pebble.Open(filepath.Join(dir, "records"), &pebble.Options{Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("cosigner: state: %w", err)
	}
	s := &store{db: db, sync: pebble.Sync}
	if noSync {
		s.sync = pebble.NoSync
	}
	return s, nil
}

type quiet struct{}

func (quiet) Infof(string, ...interface{})  {}
func (quiet) Errorf(string, ...interface{}) {}
func (quiet) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

func keySeenKey(k keySeen) []byte {
	b := make([]byte, 0, 41)
	b = append(b, 'k')
	b = binary.BigEndian.AppendUint64(b, k.customer)
	return append(b, k.pub[:]...)
}

func addrSeenKey(a addrSeen) []byte {
	b := make([]byte, 0, 10+len(a.asset)+len(a.addr))
	b = append(b, 'a')
	b = binary.BigEndian.AppendUint64(b, a.customer)
	b = append(b, a.asset...)
	b = append(b, 0)
	return append(b, a.addr...)
}

func credSeenKey(c credSeen) []byte {
	b := make([]byte, 0, 9+len(c.commit))
	b = append(b, 'c')
	b = binary.BigEndian.AppendUint64(b, c.customer)
	return append(b, c.commit...)
}

func timeValue(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }

// load reads everything back.
func (s *store) load(keys map[keySeen]time.Time, addrs map[addrSeen]time.Time, creds map[credSeen]time.Time, signed map[[32]byte]*Signed, halts map[string]Halt) error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		bad := func() error { return fmt.Errorf("cosigner: state: malformed record %x", k) }
		switch k[0] {
		case 'k':
			if len(k) != 41 || len(v) != 8 {
				return bad()
			}
			var ks keySeen
			ks.customer = binary.BigEndian.Uint64(k[1:])
			copy(ks.pub[:], k[9:])
			keys[ks] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		case 'a':
			if len(k) < 10 || len(v) != 8 {
				return bad()
			}
			rest := k[9:]
			i := 0
			for i < len(rest) && rest[i] != 0 {
				i++
			}
			if i == len(rest) {
				return bad()
			}
			a := addrSeen{customer: binary.BigEndian.Uint64(k[1:]), asset: string(rest[:i]), addr: string(rest[i+1:])}
			addrs[a] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		case 'c':
			if len(k) < 9 || len(v) != 8 {
				return bad()
			}
			creds[credSeen{customer: binary.BigEndian.Uint64(k[1:]), commit: string(k[9:])}] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		case 't':
			var r Signed
			if len(k) != 33 || json.Unmarshal(v, &r) != nil {
				return bad()
			}
			signed[[32]byte(k[1:])] = &r
		case 'h':
			var h Halt
			if json.Unmarshal(v, &h) != nil {
				return bad()
			}
			halts[h.Asset] = h
		default:
			return bad()
		}
	}
	return it.Error()
}

// putSeen adds first-seen times to b.
func putSeen(b *pebble.Batch, key []byte, t time.Time) { b.Set(key, timeValue(t), nil) }

func (s *store) putSigned(txid [32]byte, r *Signed) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Set(append([]byte{'t'}, txid[:]...), v, s.sync)
}

func (s *store) putHalt(h Halt) error {
	v, _ := json.Marshal(h)
	return s.db.Set(append([]byte{'h'}, h.Asset...), v, s.sync)
}

func (s *store) deleteHalt(asset string) error {
	return s.db.Delete(append([]byte{'h'}, asset...), s.sync)
}

func (s *store) close() error { return s.db.Close() }
