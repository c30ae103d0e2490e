package ledger

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire sizes of the fixed-layout encodings.
const (
	AccountKeySize = 13
	TransferSize   = 16 + 2*AccountKeySize + 16 + 16 + 8 + 2 + 2
	accountSize    = AccountKeySize + 4*16
	recordSize     = TransferSize + 8 + 1 + 16
)

// ErrCorrupt reports bytes that do not decode as what they claim to be.
var ErrCorrupt = errors.New("ledger: corrupt encoding")

var le = binary.LittleEndian

func putAmount(b []byte, a Amount) {
	le.PutUint64(b, a.Lo)
	le.PutUint64(b[8:], a.Hi)
}

func getAmount(b []byte) Amount { return Amount{Lo: le.Uint64(b), Hi: le.Uint64(b[8:])} }

func putKey(b []byte, k AccountKey) {
	le.PutUint64(b, uint64(k.Owner))
	le.PutUint32(b[8:], uint32(k.Asset))
	b[12] = byte(k.Kind)
}

func getKey(b []byte) AccountKey {
	return AccountKey{Owner: OwnerID(le.Uint64(b)), Asset: AssetID(le.Uint32(b[8:])), Kind: Kind(b[12])}
}

// PutID writes id in 16 bytes.
func PutID(b []byte, id ID) {
	le.PutUint64(b, id.Lo)
	le.PutUint64(b[8:], id.Hi)
}

// GetID reads an id from 16 bytes.
func GetID(b []byte) ID { return ID{Lo: le.Uint64(b), Hi: le.Uint64(b[8:])} }

// PutTransfer writes t in TransferSize bytes of b.
func PutTransfer(b []byte, t *Transfer) {
	_ = b[TransferSize-1]
	PutID(b, t.ID)
	putKey(b[16:], t.Debit)
	putKey(b[29:], t.Credit)
	putAmount(b[42:], t.Amount)
	PutID(b[58:], t.PendingID)
	le.PutUint64(b[74:], t.Ref)
	le.PutUint16(b[82:], t.Code)
	le.PutUint16(b[84:], uint16(t.Flags))
}

// GetTransfer reads a transfer from TransferSize bytes of b.
func GetTransfer(b []byte, t *Transfer) {
	_ = b[TransferSize-1]
	t.ID = GetID(b)
	t.Debit = getKey(b[16:])
	t.Credit = getKey(b[29:])
	t.Amount = getAmount(b[42:])
	t.PendingID = GetID(b[58:])
	t.Ref = le.Uint64(b[74:])
	t.Code = le.Uint16(b[82:])
	t.Flags = TransferFlags(le.Uint16(b[84:]))
}

// PutAccountKey writes k in AccountKeySize bytes of b.
func PutAccountKey(b []byte, k AccountKey) { putKey(b, k) }

// GetAccountKey reads an account key from AccountKeySize bytes of b.
func GetAccountKey(b []byte) AccountKey { return getKey(b) }

const snapshotMagic = "KNKLEDG1"

// Encode writes the whole ledger in a deterministic binary form: the same
// ledger always gives the same bytes. It is the ledger's part of a snapshot
// and of the state hash.
// The caller flushes bw.
func (l *Ledger) Encode(bw *bufio.Writer) error {
	var buf [recordSize]byte
	bw.WriteString(snapshotMagic)
	le.PutUint32(buf[:], uint32(len(l.assets)))
	bw.Write(buf[:4])
	for _, a := range l.assets {
		le.PutUint32(buf[:], uint32(a.ID))
		buf[4] = byte(len(a.Code))
		bw.Write(buf[:5])
		bw.WriteString(a.Code)
		buf[0], buf[1] = a.Decimals, byte(a.Class)
		bw.Write(buf[:2])
	}
	le.PutUint64(buf[:], uint64(len(l.customers)))
	bw.Write(buf[:8])
	for _, c := range l.customers {
		le.PutUint64(buf[:], uint64(c))
		bw.Write(buf[:8])
	}
	le.PutUint64(buf[:], uint64(len(l.accounts)))
	bw.Write(buf[:8])
	for i := range l.accounts {
		a := &l.accounts[i]
		putKey(buf[:], a.Key)
		putAmount(buf[13:], a.DebitsPending)
		putAmount(buf[29:], a.DebitsPosted)
		putAmount(buf[45:], a.CreditsPending)
		putAmount(buf[61:], a.CreditsPosted)
		bw.Write(buf[:accountSize])
	}
	le.PutUint64(buf[:], uint64(l.transfers.len()))
	bw.Write(buf[:8])
	for i := 0; i < l.transfers.len(); i++ {
		t := l.transfers.at(i)
		PutTransfer(buf[:], &t.Transfer)
		le.PutUint64(buf[TransferSize:], uint64(t.Time))
		buf[TransferSize+8] = byte(t.State)
		putAmount(buf[TransferSize+9:], t.Posted)
		bw.Write(buf[:recordSize])
	}
	return nil
}

// maxDecodeCount bounds a count read from a snapshot before anything is
// allocated for it.
const maxDecodeCount = 1 << 32

// Decode reads a ledger written by Encode. It checks what a corrupt or
// hostile file could break: counts, kinds, duplicate ids.
// It reads exactly what Encode wrote, so other sections may follow in br.
func Decode(br *bufio.Reader) (*Ledger, error) {
	var buf [recordSize]byte
	read := func(n int) ([]byte, error) {
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return buf[:n], nil
	}
	count := func(n int) (uint64, error) {
		b, err := read(n)
		if err != nil {
			return 0, err
		}
		var v uint64
		if n == 4 {
			v = uint64(le.Uint32(b))
		} else {
			v = le.Uint64(b)
		}
		if v > maxDecodeCount {
			return 0, fmt.Errorf("%w: count %d", ErrCorrupt, v)
		}
		return v, nil
	}
	b, err := read(len(snapshotMagic))
	if err != nil {
		return nil, err
	}
	if string(b) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	l := New()
	n, err := count(4)
	if err != nil {
		return nil, err
	}
	for i := uint64(0); i < n; i++ {
		if b, err = read(5); err != nil {
			return nil, err
		}
		a := Asset{ID: AssetID(le.Uint32(b))}
		cl := int(b[4])
		if cl > MaxAssetCode {
			return nil, fmt.Errorf("%w: asset code length %d", ErrCorrupt, cl)
		}
		if b, err = read(cl + 2); err != nil {
			return nil, err
		}
		a.Code, a.Decimals, a.Class = string(b[:cl]), b[cl], AssetClass(b[cl+1])
		if c := l.createAsset(&a); c != OK {
			return nil, fmt.Errorf("%w: asset %d: %v", ErrCorrupt, a.ID, c)
		}
	}
	if n, err = count(8); err != nil {
		return nil, err
	}
	for i := uint64(0); i < n; i++ {
		if b, err = read(8); err != nil {
			return nil, err
		}
		if res := l.CreateCustomers([]OwnerID{OwnerID(le.Uint64(b))}, nil); len(res) != 0 {
			return nil, fmt.Errorf("%w: customer: %v", ErrCorrupt, res[0].Code)
		}
	}
	if n, err = count(8); err != nil {
		return nil, err
	}
	l.accounts = make([]Account, 0, min(n, 1<<20))
	for i := uint64(0); i < n; i++ {
		if b, err = read(accountSize); err != nil {
			return nil, err
		}
		k := getKey(b)
		if c := l.createAccount(k); c != OK {
			return nil, fmt.Errorf("%w: account %v: %v", ErrCorrupt, k, c)
		}
		a := &l.accounts[len(l.accounts)-1]
		a.DebitsPending, a.DebitsPosted = getAmount(b[13:]), getAmount(b[29:])
		a.CreditsPending, a.CreditsPosted = getAmount(b[45:]), getAmount(b[61:])
	}
	if n, err = count(8); err != nil {
		return nil, err
	}
	for i := uint64(0); i < n; i++ {
		if b, err = read(recordSize); err != nil {
			return nil, err
		}
		var t TransferRecord
		GetTransfer(b, &t.Transfer)
		t.Time = int64(le.Uint64(b[TransferSize:]))
		t.State = TransferState(b[TransferSize+8])
		t.Posted = getAmount(b[TransferSize+9:])
		if t.ID.IsZero() || t.State < StatePosted || t.State > StatePendingVoided {
			return nil, fmt.Errorf("%w: transfer %d", ErrCorrupt, i)
		}
		if _, dup := l.transferIndex(t.ID); dup {
			return nil, fmt.Errorf("%w: transfer %v twice", ErrCorrupt, t.ID)
		}
		l.transfers.append(t)
		l.addTransferIndex(uint32(l.transfers.len() - 1))
	}
	return l, nil
}
