package zengin

import (
	"fmt"
	"slices"
	"strconv"
)

// TransferRecord is the length of a general transfer record (総合振込).
const TransferRecord = 120

// TypeTransfer is the 種別コード of a general transfer file (総合振込).
const TypeTransfer = "21"

// Results of a transfer in the bank's result file. The published layout
// leaves the last seven columns of a data record empty; this bank returns
// the request file with column 114 holding the result.
const (
	ResultNone     = ' ' // a request: no result yet
	ResultDone     = '0' // paid
	ResultRejected = '1' // 振込不能: no such account, name mismatch, account closed
	ResultReturned = '2' // 組戻し: paid and returned
)

// Payment is one data record: a transfer to a payee.
type Payment struct {
	To     Account `json:"to"` // Name is the payee's name (受取人名), 30 characters
	Amount uint64  `json:"amount"`
	// Code1 and Code2 are the customer codes (顧客コード1, 2): kinko writes
	// the payout's number (what a result is matched by) and the
	// customer's id when it fits the field's ten digits (0 otherwise:
	// the journal names the customer of each payout).
	Code1 uint64 `json:"code1,omitempty"`
	Code2 uint64 `json:"code2,omitempty"`
	// Result is the bank's result in a result file, ResultNone in a
	// request.
	Result byte `json:"result,omitempty"`
}

// TransferFile is a general transfer file: one header, payments, the
// trailer (computed) and the end record.
type TransferFile struct {
	// RequesterCode is the 振込依頼人コード the bank assigned (10 digits);
	// Requester the requester's name.
	RequesterCode string
	Requester     string
	// Month and Day are the transfer date (振込指定日, MMDD).
	Month, Day int
	// From is the account paid from: bank, branch, type, number (names
	// optional).
	From     Account
	Payments []Payment
}

// Total returns the payments' count and sum.
func (f *TransferFile) Total() (int, uint64) {
	var s uint64
	for i := range f.Payments {
		s += f.Payments[i].Amount
	}
	return len(f.Payments), s
}

// Limits of a transfer file's fields.
const (
	MaxTransferAmount = 9_999_999_999   // 10 digits
	MaxTransferTotal  = 999_999_999_999 // 12 digits
	MaxTransfers      = 999_999         // 6 digits
)

func blankRec(n int) rec {
	r := rec(make([]byte, n))
	for i := range r {
		r[i] = ' '
	}
	return r
}

// AppendTransferFile encodes a transfer file, each record followed by
// CRLF (122 bytes a record, as banks accept), computing the trailer. A
// field that does not fit (a payee name the character set cannot hold,
// an amount of zero or past ten digits, a total past twelve) is an error
// naming the payment, and nothing is returned.
func AppendTransferFile(b []byte, f *TransferFile) ([]byte, error) {
	n, total := f.Total()
	if n == 0 || n > MaxTransfers {
		return nil, fmt.Errorf("%w: %d payments (1 to %d)", ErrField, n, MaxTransfers)
	}
	if total > MaxTransferTotal {
		return nil, fmt.Errorf("%w: total %d does not fit 12 digits", ErrField, total)
	}
	var err error
	do := func(where string, e error) {
		if err == nil && e != nil {
			err = fmt.Errorf("%s: %w", where, e)
		}
	}
	r := blankRec(TransferRecord)
	r[0] = KindHeader
	copy(r[1:3], TypeTransfer)
	r[3] = '0'
	do("header", r.putDigits(5, 10, f.RequesterCode, "振込依頼人コード"))
	do("header", r.putC(15, 40, f.Requester, "振込依頼人名"))
	if !(Date{2000, f.Month, f.Day}).Valid() {
		do("header", fmt.Errorf("%w: 振込指定日 %02d%02d", ErrField, f.Month, f.Day))
	}
	do("header", r.putN(55, 4, uint64(f.Month*100+f.Day), "振込指定日"))
	do("header", r.putDigits(59, 4, f.From.Bank, "仕向銀行番号"))
	do("header", r.putC(63, 15, f.From.BankName, "仕向銀行名"))
	do("header", r.putDigits(78, 3, f.From.Branch, "仕向支店番号"))
	do("header", r.putC(81, 15, f.From.BranchName, "仕向支店名"))
	if !ValidAccountType(f.From.Type) {
		do("header", fmt.Errorf("%w: 預金種目 %d", ErrField, f.From.Type))
	}
	do("header", r.putN(96, 1, uint64(f.From.Type), "預金種目"))
	do("header", r.putDigits(97, 7, f.From.Number, "口座番号"))
	if err != nil {
		return nil, err
	}
	b = slices.Grow(b, (n+3)*(TransferRecord+2))
	b = append(append(b, r...), '\r', '\n')
	for i := range f.Payments {
		p := &f.Payments[i]
		start := len(b)
		b = b[:start+TransferRecord]
		if e := putPayment(rec(b[start:]), p); e != nil {
			return nil, fmt.Errorf("payment %d (code %d): %w", i+1, p.Code1, e)
		}
		b = append(b, '\r', '\n')
	}
	r = blankRec(TransferRecord)
	r[0] = KindTrailer
	r.putN(2, 6, uint64(n), "合計件数")
	r.putN(8, 12, total, "合計金額")
	b = append(append(b, r...), '\r', '\n')
	r = blankRec(TransferRecord)
	r[0] = KindEnd
	return append(append(b, r...), '\r', '\n'), nil
}

func putPayment(r rec, p *Payment) error {
	for i := range r {
		r[i] = ' '
	}
	r[0] = KindData
	if err := r.putDigits(2, 4, p.To.Bank, "被仕向銀行番号"); err != nil {
		return err
	}
	if err := r.putC(6, 15, p.To.BankName, "被仕向銀行名"); err != nil {
		return err
	}
	if err := r.putDigits(21, 3, p.To.Branch, "被仕向支店番号"); err != nil {
		return err
	}
	if err := r.putC(24, 15, p.To.BranchName, "被仕向支店名"); err != nil {
		return err
	}
	r.putN(39, 4, 0, "手形交換所番号")
	if !ValidAccountType(p.To.Type) {
		return fmt.Errorf("%w: 預金種目 %d", ErrField, p.To.Type)
	}
	r.putN(43, 1, uint64(p.To.Type), "預金種目")
	if err := r.putDigits(44, 7, p.To.Number, "口座番号"); err != nil {
		return err
	}
	if p.To.Name == "" {
		return fmt.Errorf("%w: 受取人名 is empty", ErrField)
	}
	if err := r.putC(51, 30, p.To.Name, "受取人名"); err != nil {
		return err
	}
	if p.Amount == 0 || p.Amount > MaxTransferAmount {
		return fmt.Errorf("%w: 振込金額 %d (1 to %d)", ErrField, p.Amount, uint64(MaxTransferAmount))
	}
	r.putN(81, 10, p.Amount, "振込金額")
	r[90] = '0'
	if err := r.putN(92, 10, p.Code1, "顧客コード1"); err != nil {
		return err
	}
	if err := r.putN(102, 10, p.Code2, "顧客コード2"); err != nil {
		return err
	}
	r[111] = '7' // 電信扱
	switch p.Result {
	case 0, ResultNone:
	case ResultDone, ResultRejected, ResultReturned:
		r[113] = p.Result
	default:
		return fmt.Errorf("%w: result %q", ErrField, p.Result)
	}
	return nil
}

// ParseTransferFile reads a transfer file or a result file: one header
// (種別 21, JIS), data records, a trailer whose count and total must equal
// the records', and the end record, with or without CRLF after each
// record. Anything else is an error and no file.
func ParseTransferFile(b []byte) (*TransferFile, error) {
	rs, err := records(b, TransferRecord)
	if err != nil {
		return nil, err
	}
	if len(rs) < 4 {
		return nil, fmt.Errorf("%w: %d records; a file has a header, data, a trailer and an end record", ErrFormat, len(rs))
	}
	x := &reader{r: rs[0], n: 1}
	if rs[0][0] != KindHeader {
		return nil, fmt.Errorf("%w: record 1: kind %q, not a header", ErrFormat, rs[0][0])
	}
	if string(rs[0][1:3]) != TypeTransfer {
		x.fail(2, "種別コード %q is not %s (総合振込)", rs[0][1:3], TypeTransfer)
	}
	if rs[0][3] != '0' {
		x.fail(4, "コード区分 %q is not 0 (JIS)", rs[0][3])
	}
	f := &TransferFile{}
	f.RequesterCode = x.digits(5, 10, "振込依頼人コード")
	f.Requester = x.c(15, 40, "振込依頼人名")
	md := x.n64(55, 4, "振込指定日")
	f.Month, f.Day = int(md/100), int(md%100)
	f.From.Bank = x.digits(59, 4, "仕向銀行番号")
	f.From.BankName = x.c(63, 15, "仕向銀行名")
	f.From.Branch = x.digits(78, 3, "仕向支店番号")
	f.From.BranchName = x.c(81, 15, "仕向支店名")
	f.From.Type = int(x.n64(96, 1, "預金種目"))
	f.From.Number = x.digits(97, 7, "口座番号")
	x.blank(104, 17, ' ')
	if x.err == nil && !(Date{2000, f.Month, f.Day}).Valid() {
		x.fail(55, "振込指定日 %04d is not a date", md)
	}
	if x.err == nil && !ValidAccountType(f.From.Type) {
		x.fail(96, "預金種目 %d", f.From.Type)
	}
	if x.err != nil {
		return nil, x.err
	}
	end := len(rs) - 2
	if end-1 > MaxTransfers {
		return nil, fmt.Errorf("%w: %d payments, more than %d", ErrFormat, end-1, MaxTransfers)
	}
	f.Payments = make([]Payment, 0, end-1)
	for i := 1; i < end; i++ {
		if rs[i][0] != KindData {
			return nil, fmt.Errorf("%w: record %d: kind %q where a data record, then the trailer and the end record, belong (truncated or reordered file)", ErrFormat, i+1, rs[i][0])
		}
		x := &reader{r: rs[i], n: i + 1}
		var p Payment
		p.To.Bank = x.digits(2, 4, "被仕向銀行番号")
		p.To.BankName = x.c(6, 15, "被仕向銀行名")
		p.To.Branch = x.digits(21, 3, "被仕向支店番号")
		p.To.BranchName = x.c(24, 15, "被仕向支店名")
		if c := rs[i][38:42]; string(c) != "0000" && string(c) != "    " {
			x.fail(39, "手形交換所番号 %q is neither zeros nor spaces", c)
		}
		p.To.Type = int(x.n64(43, 1, "預金種目"))
		p.To.Number = x.digits(44, 7, "口座番号")
		p.To.Name = x.c(51, 30, "受取人名")
		p.Amount = x.n64(81, 10, "振込金額")
		if c := rs[i][90]; c != '0' && c != '1' && c != '2' && c != ' ' {
			x.fail(91, "新規コード %q", c)
		}
		p.Code1 = x.n64(92, 10, "顧客コード1")
		p.Code2 = x.n64(102, 10, "顧客コード2")
		if c := rs[i][111]; c != '7' && c != '8' && c != ' ' {
			x.fail(112, "振込指定区分 %q", c)
		}
		if c := rs[i][112]; c != ' ' && c != 'Y' {
			x.fail(113, "識別表示 %q", c)
		}
		switch c := rs[i][113]; c {
		case ResultNone, ResultDone, ResultRejected, ResultReturned:
			if c != ResultNone {
				p.Result = c
			}
		default:
			x.fail(114, "result %q", c)
		}
		x.blank(115, 6, ' ')
		if x.err == nil && !ValidAccountType(p.To.Type) {
			x.fail(43, "預金種目 %d", p.To.Type)
		}
		if x.err == nil && p.Amount == 0 {
			x.fail(81, "振込金額 is zero")
		}
		if x.err == nil && p.To.Name == "" {
			x.fail(51, "受取人名 is empty")
		}
		if x.err != nil {
			return nil, x.err
		}
		f.Payments = append(f.Payments, p)
	}
	if rs[end][0] != KindTrailer {
		return nil, fmt.Errorf("%w: record %d: kind %q where the trailer belongs", ErrFormat, end+1, rs[end][0])
	}
	x = &reader{r: rs[end], n: end + 1}
	n := x.n64(2, 6, "合計件数")
	total := x.n64(8, 12, "合計金額")
	x.blank(20, 101, ' ')
	if rs[end+1][0] != KindEnd {
		return nil, fmt.Errorf("%w: record %d: kind %q, not the end record (truncated file)", ErrFormat, end+2, rs[end+1][0])
	}
	y := &reader{r: rs[end+1], n: end + 2}
	y.blank(2, 119, ' ')
	if x.err != nil {
		return nil, x.err
	}
	if y.err != nil {
		return nil, y.err
	}
	cn, ct := f.Total()
	if n != uint64(cn) || total != ct {
		return nil, fmt.Errorf("%w: trailer says %d payments of %d yen, the records %d of %d", ErrTotals, n, total, cn, ct)
	}
	return f, nil
}

// PaymentKey is the id a payment's codes name, for results: "code1".
func (p *Payment) PaymentKey() string { return strconv.FormatUint(p.Code1, 10) }
