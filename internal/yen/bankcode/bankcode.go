// Package bankcode is the Zengin bank and branch code master
// (金融機関コード・支店コード): which 4-digit bank codes and 3-digit branch
// codes exist, and their names in kana (as the Zengin files write them)
// and in plain words. kinko checks a customer's bank account, and its own
// trust and operating accounts, against it, and shows the names.
//
// The master is read from a CSV file (Parse: one branch a line, bank
// code, branch code, bank name kana, branch name kana, bank name, branch
// name; docs/yen.md) or is the small built-in sample (Builtin). Its
// canonical encoding (Encode, hashed by Hash) is what the yen setup
// journals, so that replaying the journal checks against the master the
// setup was given, whatever file is on the host later.
package bankcode

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"kinko/internal/yen/zengin"
)

// Errors of the master.
var (
	// ErrFormat reports a master file that does not parse: it names the
	// line.
	ErrFormat = errors.New("bankcode: malformed bank master")
	// ErrUnknownBank reports a bank code the master does not have.
	ErrUnknownBank = errors.New("bankcode: bank code not in the bank master")
	// ErrUnknownBranch reports a branch code the master does not have at
	// that bank.
	ErrUnknownBranch = errors.New("bankcode: branch code not in the bank master")
)

// Bounds, checked before anything is allocated for them.
const (
	// MaxFileBytes bounds a master file read (the full master is about
	// 2 MB).
	MaxFileBytes = 8 << 20
	// MaxEncoded bounds the canonical encoding, so that it fits one
	// journal entry (journal.MaxPayload is 4 MiB) with the rest of the
	// setup.
	MaxEncoded = 3 << 20
	// MaxBranches bounds the branches of a master (the full master has
	// about 29,000).
	MaxBranches = 100_000
	// MaxKana is the width of a bank or branch name in a transfer file.
	MaxKana = 15
	// MaxName bounds a name in plain words, in bytes.
	MaxName = 120
)

// Header is the optional first line of a master file.
const Header = "bank_code,branch_code,bank_kana,branch_kana,bank_name,branch_name"

// Branch is a branch of a bank.
type Branch struct {
	Code string `json:"code"` // 3 digits
	Kana string `json:"kana"` // Zengin form (zengin.Normalize), at most 15
	Name string `json:"name"` // in plain words, e.g. 渋谷
}

// Bank is a bank and its branches, ordered by code.
type Bank struct {
	Code     string   `json:"code"` // 4 digits
	Kana     string   `json:"kana"`
	Name     string   `json:"name"`
	Branches []Branch `json:"branches"`
}

// Master is the bank and branch code master: banks ordered by code. It
// is read-only once parsed; lookups are binary searches, so a master
// decoded from a snapshot needs no index.
type Master struct {
	Banks []Bank `json:"banks"`
}

// Bank returns a bank by its code.
func (m *Master) Bank(code string) (*Bank, bool) {
	i := sort.Search(len(m.Banks), func(i int) bool { return m.Banks[i].Code >= code })
	if i < len(m.Banks) && m.Banks[i].Code == code {
		return &m.Banks[i], true
	}
	return nil, false
}

// Branch returns a branch of the bank by its code.
func (b *Bank) Branch(code string) (*Branch, bool) {
	i := sort.Search(len(b.Branches), func(i int) bool { return b.Branches[i].Code >= code })
	if i < len(b.Branches) && b.Branches[i].Code == code {
		return &b.Branches[i], true
	}
	return nil, false
}

// Lookup returns the bank and branch of a pair of codes, or an error
// naming which of the two the master does not have.
func (m *Master) Lookup(bank, branch string) (*Bank, *Branch, error) {
	b, ok := m.Bank(bank)
	if !ok {
		return nil, nil, fmt.Errorf("%w: bank %q", ErrUnknownBank, bank)
	}
	br, ok := b.Branch(branch)
	if !ok {
		return b, nil, fmt.Errorf("%w: branch %q of bank %s (%s)", ErrUnknownBranch, branch, bank, b.Name)
	}
	return b, br, nil
}

// Describe names a bank and branch in plain words, e.g. "三菱ＵＦＪ 渋谷
// (0005-135)"; codes the master does not have are said to be unknown.
func (m *Master) Describe(bank, branch string) string {
	b, br, err := m.Lookup(bank, branch)
	switch {
	case b == nil:
		return fmt.Sprintf("unknown bank (%s-%s)", bank, branch)
	case err != nil:
		return fmt.Sprintf("%s, unknown branch (%s-%s)", b.Name, bank, branch)
	}
	return fmt.Sprintf("%s %s (%s-%s)", b.Name, br.Name, bank, branch)
}

// Count returns the number of banks and branches.
func (m *Master) Count() (banks, branches int) {
	for _, b := range m.Banks {
		branches += len(b.Branches)
	}
	return len(m.Banks), branches
}

// Encode returns the master's canonical encoding: a master file without
// header or comments, one branch a line in code order, each line ended
// by "\n", names as parsed (kana in Zengin form). Parse(Encode(m)) is m.
func (m *Master) Encode() []byte {
	var buf bytes.Buffer
	for _, b := range m.Banks {
		for _, br := range b.Branches {
			fmt.Fprintf(&buf, "%s,%s,%s,%s,%s,%s\n", b.Code, br.Code, b.Kana, br.Kana, b.Name, br.Name)
		}
	}
	return buf.Bytes()
}

// Hash returns the hex SHA-256 of the canonical encoding.
func (m *Master) Hash() string {
	h := sha256.Sum256(m.Encode())
	return hex.EncodeToString(h[:])
}

//go:embed builtin.csv
var builtinCSV []byte

// Builtin returns kinko's built-in sample of the master: a few
// well-known banks (みずほ, 三菱ＵＦＪ, 三井住友, りそな, ＰａｙＰａｙ, 楽天,
// 住信ＳＢＩネット, ゆうちょ) and some of their branches, not the whole
// master (builtin.csv names its source).
func Builtin() *Master {
	m, err := Parse(builtinCSV)
	if err != nil {
		panic("bankcode: the built-in master does not parse: " + err.Error())
	}
	return m
}

// Parse reads a master file: UTF-8 CSV (fields may be quoted), one branch
// a line: bank code (4 digits), branch code (3 digits), bank name in kana,
// branch name in kana (half-width or full-width katakana or hiragana,
// written in Zengin form, at most 15 characters), bank name, branch name
// (plain words). An optional first line is Header; lines starting with #
// and blank lines are skipped. Every line of a bank must give the same
// bank names; a bank and branch appears once. Any failure is ErrFormat
// naming the line, and nothing is returned.
func Parse(b []byte) (*Master, error) {
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrFormat, len(b), MaxFileBytes)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	r := csv.NewReader(bytes.NewReader(b))
	r.Comment = '#'
	r.FieldsPerRecord = 6
	r.ReuseRecord = true
	type row struct {
		line int
		bank Bank
		br   Branch
	}
	var rows []row
	first := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%w: line %d: %v", ErrFormat, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		line, _ := r.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first && strings.Join(rec, ",") == Header {
			first = false
			continue
		}
		first = false
		if len(rows) >= MaxBranches {
			return nil, fmt.Errorf("%w: line %d: more than %d branches", ErrFormat, line, MaxBranches)
		}
		x, err := parseRow(rec)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrFormat, line, err)
		}
		rows = append(rows, row{line, x.bank, x.br})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no branches", ErrFormat)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].bank.Code != rows[j].bank.Code {
			return rows[i].bank.Code < rows[j].bank.Code
		}
		return rows[i].br.Code < rows[j].br.Code
	})
	m := &Master{}
	var prev *row
	for i := range rows {
		x := &rows[i]
		if prev != nil && prev.bank.Code == x.bank.Code {
			if prev.br.Code == x.br.Code {
				a, z := prev.line, x.line
				if z < a {
					a, z = z, a
				}
				return nil, fmt.Errorf("%w: line %d: branch %s-%s is already on line %d", ErrFormat, z, x.bank.Code, x.br.Code, a)
			}
			if prev.bank.Kana != x.bank.Kana || prev.bank.Name != x.bank.Name {
				return nil, fmt.Errorf("%w: line %d: bank %s is %s %s here but %s %s on line %d", ErrFormat, x.line, x.bank.Code,
					x.bank.Kana, x.bank.Name, prev.bank.Kana, prev.bank.Name, prev.line)
			}
		} else {
			m.Banks = append(m.Banks, x.bank)
		}
		last := &m.Banks[len(m.Banks)-1]
		last.Branches = append(last.Branches, x.br)
		prev = x
	}
	if n := len(m.Encode()); n > MaxEncoded {
		return nil, fmt.Errorf("%w: %d bytes encoded, more than %d", ErrFormat, n, MaxEncoded)
	}
	return m, nil
}

func parseRow(rec []string) (struct {
	bank Bank
	br   Branch
}, error) {
	var out struct {
		bank Bank
		br   Branch
	}
	if !digits(rec[0], 4) {
		return out, fmt.Errorf("bank code %q is not 4 digits", rec[0])
	}
	if !digits(rec[1], 3) {
		return out, fmt.Errorf("branch code %q is not 3 digits", rec[1])
	}
	var err error
	for _, f := range []struct {
		name string
		in   string
		out  *string
	}{{"bank name kana", rec[2], &out.bank.Kana}, {"branch name kana", rec[3], &out.br.Kana}} {
		if *f.out, err = kana(f.in); err != nil {
			return out, fmt.Errorf("%s %q: %v", f.name, f.in, err)
		}
	}
	for _, f := range []struct {
		name string
		in   string
	}{{"bank name", rec[4]}, {"branch name", rec[5]}} {
		if err := plain(f.in); err != nil {
			return out, fmt.Errorf("%s %q: %v", f.name, f.in, err)
		}
	}
	out.bank.Code, out.bank.Name = rec[0], rec[4]
	out.br.Code, out.br.Name = rec[1], rec[5]
	return out, nil
}

// kana writes a name in Zengin form and checks it fits a transfer file's
// field.
func kana(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("not UTF-8 (convert a Shift_JIS file first: iconv -f SHIFT_JIS -t UTF-8)")
	}
	n, err := zengin.Normalize(s)
	if err != nil {
		return "", err
	}
	b, _ := zengin.Encode(n)
	if len(b) == 0 || len(b) > MaxKana {
		return "", fmt.Errorf("1 to %d characters in Zengin form (%q is %d)", MaxKana, n, len(b))
	}
	if strings.ContainsAny(n, ",\"") {
		return "", errors.New("a comma or a quote")
	}
	return n, nil
}

// plain checks a name in plain words: UTF-8, printable, no comma or
// quote (the canonical encoding does not quote), not empty, bounded.
func plain(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8 (convert a Shift_JIS file first: iconv -f SHIFT_JIS -t UTF-8)")
	}
	if s == "" || len(s) > MaxName {
		return fmt.Errorf("1 to %d bytes", MaxName)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ',' || r == '"' {
			return fmt.Errorf("character %q", r)
		}
	}
	return nil
}

func digits(s string, n int) bool {
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
