package zengin

import (
	"errors"
	"fmt"
	"time"
)

// ErrFormat reports a file that is not a well-formed Zengin file: a record
// of the wrong length or kind, a field that is not digits, records out of
// order, a missing trailer or end record.
var ErrFormat = errors.New("zengin: malformed file")

// ErrTotals reports a trailer whose counts or totals, or a statement whose
// balances, do not add up to its data records.
var ErrTotals = errors.New("zengin: totals do not add up")

// ErrField reports a value that does not fit its field: too long, too
// large, or not of the field's kind.
var ErrField = errors.New("zengin: value does not fit its field")

// Bounds on what a file may hold, checked before anything is allocated.
const (
	// MaxFileBytes bounds a file read.
	MaxFileBytes = 512 << 20
	// MaxRecords bounds the data records of one file.
	MaxRecords = 2_000_000
)

// Record kinds (データ区分), the first byte of every record.
const (
	KindHeader  = '1'
	KindData    = '2'
	KindTrailer = '8'
	KindEnd     = '9'
)

// Account types (預金種目).
const (
	Ordinary = 1 // 普通預金
	Current  = 2 // 当座預金
	Savings  = 4 // 貯蓄預金
	Other    = 9 // その他
)

// ValidAccountType reports whether t is an account type of the format.
func ValidAccountType(t int) bool { return t == Ordinary || t == Current || t == Savings || t == Other }

// Date is a calendar date (Gregorian). Statements write it in the
// Japanese era (和暦, Reiwa: YY = year - 2018), transfer files as MMDD.
type Date struct {
	Year, Month, Day int
}

// DateOf returns the date of t in Japan's time zone.
func DateOf(t time.Time) Date {
	y, m, d := t.In(jst).Date()
	return Date{y, int(m), d}
}

var jst = time.FixedZone("JST", 9*3600)

// Valid reports whether d is a real date.
func (d Date) Valid() bool {
	t := time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC)
	return t.Year() == d.Year && int(t.Month()) == d.Month && t.Day() == d.Day
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// String writes the date as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// reiwaStart is the first day of the Reiwa era.
var reiwaStart = Date{2019, 5, 1}

// rec is one record being written or read.
type rec []byte

// putN writes v right-aligned with zeros in [pos, pos+w) (pos 1-based as
// the published layouts count).
func (r rec) putN(pos, w int, v uint64, name string) error {
	p := r[pos-1 : pos-1+w]
	for i := w - 1; i >= 0; i-- {
		p[i] = byte('0' + v%10)
		v /= 10
	}
	if v != 0 {
		return fmt.Errorf("%w: %s does not fit %d digits", ErrField, name, w)
	}
	return nil
}

// putDigits writes a string of digits right-aligned with zeros.
func (r rec) putDigits(pos, w int, s, name string) error {
	if len(s) > w {
		return fmt.Errorf("%w: %s %q is longer than %d digits", ErrField, name, s, w)
	}
	p := r[pos-1 : pos-1+w]
	for i := range p {
		p[i] = '0'
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("%w: %s %q is not digits", ErrField, name, s)
		}
	}
	copy(p[w-len(s):], s)
	return nil
}

// putC writes s, in Zengin characters, left-aligned with spaces.
func (r rec) putC(pos, w int, s, name string) error {
	b, err := Encode(s)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > w {
		return fmt.Errorf("%w: %s %q is longer than %d characters", ErrField, name, s, w)
	}
	p := r[pos-1 : pos-1+w]
	n := copy(p, b)
	for i := n; i < w; i++ {
		p[i] = ' '
	}
	return nil
}

// putReiwa writes d as 和暦 YYMMDD.
func (r rec) putReiwa(pos int, d Date, name string) error {
	if !d.Valid() || d.Before(reiwaStart) || d.Year-2018 > 99 {
		return fmt.Errorf("%w: %s %s is not a date of the Reiwa era", ErrField, name, d)
	}
	return r.putN(pos, 6, uint64((d.Year-2018)*10000+d.Month*100+d.Day), name)
}

// reader reads fields, keeping the first error.
type reader struct {
	r   rec
	n   int // record number, 1-based, for messages
	err error
}

func (x *reader) fail(pos int, format string, args ...any) {
	if x.err == nil {
		x.err = fmt.Errorf("%w: record %d, column %d: %s", ErrFormat, x.n, pos, fmt.Sprintf(format, args...))
	}
}

func (x *reader) n64(pos, w int, name string) uint64 {
	var v uint64
	for _, c := range x.r[pos-1 : pos-1+w] {
		if c < '0' || c > '9' {
			x.fail(pos, "%s is not digits", name)
			return 0
		}
		v = v*10 + uint64(c-'0')
	}
	return v
}

func (x *reader) digits(pos, w int, name string) string {
	p := x.r[pos-1 : pos-1+w]
	for _, c := range p {
		if c < '0' || c > '9' {
			x.fail(pos, "%s is not digits", name)
			return ""
		}
	}
	return string(p)
}

// c reads a text field, trailing spaces trimmed.
func (x *reader) c(pos, w int, name string) string {
	p := x.r[pos-1 : pos-1+w]
	e := len(p)
	for e > 0 && p[e-1] == ' ' {
		e--
	}
	s, err := Decode(p[:e])
	if err != nil {
		x.fail(pos, "%s: %v", name, err)
		return ""
	}
	return s
}

// blank checks a filler field holds only spaces (or zeros, for N fillers).
func (x *reader) blank(pos, w int, fill byte) {
	for _, c := range x.r[pos-1 : pos-1+w] {
		if c != fill {
			x.fail(pos, "filler holds %q", c)
			return
		}
	}
}

func (x *reader) reiwa(pos int, name string) Date {
	v := x.n64(pos, 6, name)
	d := Date{int(v/10000) + 2018, int(v / 100 % 100), int(v % 100)}
	if x.err == nil && (!d.Valid() || d.Before(reiwaStart)) {
		x.fail(pos, "%s %06d is not a date", name, v)
	}
	return d
}

// records splits a file into records of size n: all followed by CRLF, or
// none. It checks the size before anything is allocated.
func records(b []byte, n int) ([]rec, error) {
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrFormat, len(b), MaxFileBytes)
	}
	step := n
	if len(b) > n+1 && b[n] == '\r' && b[n+1] == '\n' {
		step = n + 2
	}
	if len(b) == 0 || len(b)%step != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte records", ErrFormat, len(b), n)
	}
	count := len(b) / step
	if count > MaxRecords+64 {
		return nil, fmt.Errorf("%w: %d records, more than %d", ErrFormat, count, MaxRecords)
	}
	out := make([]rec, count)
	for i := range out {
		r := b[i*step : i*step+step]
		if step != n && (r[n] != '\r' || r[n+1] != '\n') {
			return nil, fmt.Errorf("%w: record %d does not end in CRLF", ErrFormat, i+1)
		}
		out[i] = rec(r[:n])
	}
	return out, nil
}

// Account is a bank account as the files name it.
type Account struct {
	Bank       string `json:"bank"` // 4 digits (統一金融機関コード)
	BankName   string `json:"bank_name,omitempty"`
	Branch     string `json:"branch"` // 3 digits
	BranchName string `json:"branch_name,omitempty"`
	Type       int    `json:"type"`   // 預金種目
	Number     string `json:"number"` // 7 digits
	Name       string `json:"name,omitempty"`
}

// CheckCodes checks an account's bank, branch and number are digits of
// the right lengths and its type one of the format's.
func (a Account) CheckCodes() error {
	if !isDigits(a.Bank, 4) {
		return fmt.Errorf("%w: bank code %q is not 4 digits", ErrField, a.Bank)
	}
	if !isDigits(a.Branch, 3) {
		return fmt.Errorf("%w: branch code %q is not 3 digits", ErrField, a.Branch)
	}
	if !isDigits(a.Number, 7) {
		return fmt.Errorf("%w: account number %q is not 7 digits", ErrField, a.Number)
	}
	if !ValidAccountType(a.Type) {
		return fmt.Errorf("%w: account type %d", ErrField, a.Type)
	}
	return nil
}

// Key names the account uniquely: bank-branch-type-number.
func (a Account) Key() string { return fmt.Sprintf("%s-%s-%d-%s", a.Bank, a.Branch, a.Type, a.Number) }

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
