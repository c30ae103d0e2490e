package core

import (
	"encoding/binary"
	"errors"
	"fmt"

	"kinko/internal/ledger"
)

// Kind names a command in the journal. Kinds are part of the journal's
// format: never renumber one.
type Kind uint16

// Command kinds.
const (
	KindCreateAssets    Kind = 1
	KindCreateCustomers Kind = 2
	KindCreateAccounts  Kind = 3
	KindCreateTransfers Kind = 4
)

var kindNames = map[Kind]string{
	KindCreateAssets:    "create_assets",
	KindCreateCustomers: "create_customers",
	KindCreateAccounts:  "create_accounts",
	KindCreateTransfers: "create_transfers",
}

// String returns the kind's name.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}

// Command is something the core can be asked to do. Its payload is what the
// journal stores.
type Command interface {
	Kind() Kind
	// AppendPayload appends the command's encoding to b.
	AppendPayload(b []byte) []byte
}

// ErrCommandInvalid reports a payload that is not a valid command of its
// kind: the command is refused before it reaches the journal.
var ErrCommandInvalid = errors.New("command invalid")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCommandInvalid, fmt.Sprintf(format, args...))
}

// CreateAssets registers assets.
type CreateAssets struct{ Assets []ledger.Asset }

// CreateCustomers registers customers in the ledger.
type CreateCustomers struct{ IDs []ledger.OwnerID }

// CreateAccounts opens accounts.
type CreateAccounts struct{ Keys []ledger.AccountKey }

// CreateTransfers applies transfers.
type CreateTransfers struct{ Transfers []ledger.Transfer }

func (CreateAssets) Kind() Kind    { return KindCreateAssets }
func (CreateCustomers) Kind() Kind { return KindCreateCustomers }
func (CreateAccounts) Kind() Kind  { return KindCreateAccounts }
func (CreateTransfers) Kind() Kind { return KindCreateTransfers }

var le = binary.LittleEndian

// AppendPayload encodes the assets.
func (c CreateAssets) AppendPayload(b []byte) []byte {
	b = le.AppendUint32(b, uint32(len(c.Assets)))
	for _, a := range c.Assets {
		b = le.AppendUint32(b, uint32(a.ID))
		b = append(b, byte(len(a.Code)))
		b = append(b, a.Code...)
		b = append(b, a.Decimals, byte(a.Class))
	}
	return b
}

// AppendPayload encodes the customer ids.
func (c CreateCustomers) AppendPayload(b []byte) []byte {
	b = le.AppendUint32(b, uint32(len(c.IDs)))
	for _, id := range c.IDs {
		b = le.AppendUint64(b, uint64(id))
	}
	return b
}

// AppendPayload encodes the account keys.
func (c CreateAccounts) AppendPayload(b []byte) []byte {
	b = le.AppendUint32(b, uint32(len(c.Keys)))
	for _, k := range c.Keys {
		var buf [ledger.AccountKeySize]byte
		ledger.PutAccountKey(buf[:], k)
		b = append(b, buf[:]...)
	}
	return b
}

// AppendPayload encodes the transfers.
func (c CreateTransfers) AppendPayload(b []byte) []byte {
	b = le.AppendUint32(b, uint32(len(c.Transfers)))
	n := len(b)
	b = append(b, make([]byte, len(c.Transfers)*ledger.TransferSize)...)
	for i := range c.Transfers {
		ledger.PutTransfer(b[n+i*ledger.TransferSize:], &c.Transfers[i])
	}
	return b
}

// batchCount reads a batch's count and checks it against the bound and the
// bytes that must follow, before anything is allocated.
func batchCount(p []byte, each int) (int, []byte, error) {
	if len(p) < 4 {
		return 0, nil, invalid("payload of %d bytes has no count", len(p))
	}
	n := le.Uint32(p)
	if n == 0 {
		return 0, nil, invalid("empty batch")
	}
	if n > ledger.MaxBatch {
		return 0, nil, invalid("batch of %d exceeds %d", n, ledger.MaxBatch)
	}
	if each > 0 && len(p)-4 != int(n)*each {
		return 0, nil, invalid("%d events need %d bytes, have %d", n, int(n)*each, len(p)-4)
	}
	return int(n), p[4:], nil
}

// DecodeCommand decodes a journaled payload of the given kind. It is the
// one decoder used to check a command before journaling, to verify the
// journal, and to apply it.
func DecodeCommand(kind uint16, p []byte) (Command, error) {
	switch Kind(kind) {
	case KindCreateAssets:
		return decodeAssets(p)
	case KindCreateCustomers:
		n, rest, err := batchCount(p, 8)
		if err != nil {
			return nil, err
		}
		c := CreateCustomers{IDs: make([]ledger.OwnerID, n)}
		for i := range c.IDs {
			c.IDs[i] = ledger.OwnerID(le.Uint64(rest[i*8:]))
		}
		return c, nil
	case KindCreateAccounts:
		n, rest, err := batchCount(p, ledger.AccountKeySize)
		if err != nil {
			return nil, err
		}
		c := CreateAccounts{Keys: make([]ledger.AccountKey, n)}
		for i := range c.Keys {
			c.Keys[i] = ledger.GetAccountKey(rest[i*ledger.AccountKeySize:])
		}
		return c, nil
	case KindCreateTransfers:
		var c CreateTransfers
		var err error
		c.Transfers, err = decodeTransfers(p, nil)
		return c, err
	}
	if c, ok, err := decodeCustody(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodePeople(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeKeys(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeWithdraw(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeBatch(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeGas(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeTrading(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeCompensation(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeAML(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeOwed(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeReserves(Kind(kind), p); ok {
		return c, err
	}
	if c, ok, err := decodeYen(Kind(kind), p); ok {
		return c, err
	}
	return nil, invalid("unknown kind %d", kind)
}

// decodeTransfers decodes a transfers payload into dst's memory.
func decodeTransfers(p []byte, dst []ledger.Transfer) ([]ledger.Transfer, error) {
	n, rest, err := batchCount(p, ledger.TransferSize)
	if err != nil {
		return nil, err
	}
	if cap(dst) < n {
		dst = make([]ledger.Transfer, n)
	}
	dst = dst[:n]
	for i := range dst {
		ledger.GetTransfer(rest[i*ledger.TransferSize:], &dst[i])
	}
	return dst, nil
}

func decodeAssets(p []byte) (Command, error) {
	n, rest, err := batchCount(p, 0)
	if err != nil {
		return nil, err
	}
	c := CreateAssets{Assets: make([]ledger.Asset, 0, min(n, 64))}
	for i := 0; i < n; i++ {
		if len(rest) < 5 {
			return nil, invalid("asset %d truncated", i)
		}
		a := ledger.Asset{ID: ledger.AssetID(le.Uint32(rest))}
		cl := int(rest[4])
		if cl > ledger.MaxAssetCode || len(rest) < 5+cl+2 {
			return nil, invalid("asset %d truncated or code too long", i)
		}
		a.Code = string(rest[5 : 5+cl])
		a.Decimals, a.Class = rest[5+cl], ledger.AssetClass(rest[6+cl])
		rest = rest[7+cl:]
		c.Assets = append(c.Assets, a)
	}
	if len(rest) != 0 {
		return nil, invalid("%d trailing bytes", len(rest))
	}
	return c, nil
}

// CheckPayload reports whether a journaled payload decodes as a command of
// its kind: the check `kinko journal verify` makes of every entry.
func CheckPayload(kind uint16, p []byte) error {
	_, err := DecodeCommand(kind, p)
	return err
}
