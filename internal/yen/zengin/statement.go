package zengin

import (
	"fmt"
)

// StatementRecord is the length of a statement record (入出金取引明細).
const StatementRecord = 200

// TypeStatement is the 種別コード of a statement of deposits and
// withdrawals (入出金取引明細).
const TypeStatement = "03"

// Transaction kinds of a statement entry (取引区分).
const (
	TxCash       = 10 // 現金
	TxTransfer   = 11 // 振込
	TxOtherBank  = 12 // 他店券入金
	TxClearing   = 13 // 交換
	TxBook       = 14 // 振替
	TxOther      = 18 // その他
	TxCorrection = 19 // 訂正
)

func validTx(k int) bool {
	switch k {
	case TxCash, TxTransfer, TxOtherBank, TxClearing, TxBook, TxOther, TxCorrection:
		return true
	}
	return false
}

// Entry is one data record of a statement: a movement of the account.
type Entry struct {
	// Ref is the bank's reference number (照会番号), unique per account:
	// kinko's idempotency key for the movement.
	Ref       uint64 `json:"ref"`
	Date      Date   `json:"date"`       // 勘定日
	ValueDate Date   `json:"value_date"` // 預入・払出日
	// Credit: 入金 (1); else 出金 (2).
	Credit bool `json:"credit"`
	// Kind is the 取引区分.
	Kind   int    `json:"kind"`
	Amount uint64 `json:"amount"` // 取引金額
	// SenderCode and Sender are the payer's 振込依頼人コード and name.
	SenderCode   string `json:"sender_code,omitempty"`
	Sender       string `json:"sender,omitempty"`
	SenderBank   string `json:"sender_bank,omitempty"`
	SenderBranch string `json:"sender_branch,omitempty"`
	// Memo is 摘要内容; for a transfer to a virtual account (振込入金口座)
	// this bank writes the virtual account's branch and number there, ten
	// digits.
	Memo string `json:"memo,omitempty"`
	EDI  string `json:"edi,omitempty"`
}

// StatementGroup is one account's statement: header, entries, trailer.
type StatementGroup struct {
	Created, From, To Date
	Account           Account
	// Passbook is 通帳・証書区分 (1 通帳, 2 証書, 3 その他).
	Passbook int
	// Opening and Closing are the balances before and after (取引前残高,
	// 取引後残高); negative when overdrawn (貸越区分 2).
	Opening, Closing int64
	Entries          []Entry
}

// Totals returns what a trailer says of the entries.
func (g *StatementGroup) Totals() (credits, debits int, creditTotal, debitTotal uint64) {
	for i := range g.Entries {
		if g.Entries[i].Credit {
			credits++
			creditTotal += g.Entries[i].Amount
		} else {
			debits++
			debitTotal += g.Entries[i].Amount
		}
	}
	return
}

// Statement is a statement file: one group per account.
type Statement struct {
	Groups []StatementGroup
}

const maxBalance = 99_999_999_999_999 // 14 digits

func putBalance(r rec, signPos, pos int, v int64, name string) error {
	sign := uint64(1)
	if v < 0 {
		sign, v = 2, -v
	}
	if v > maxBalance {
		return fmt.Errorf("%w: %s %d does not fit 14 digits", ErrField, name, v)
	}
	r.putN(signPos, 1, sign, name)
	return r.putN(pos, 14, uint64(v), name)
}

// AppendStatement encodes a statement, each record followed by CRLF,
// with the trailers computed from the entries. A field that does not fit
// is an error and nothing is returned.
func AppendStatement(b []byte, s *Statement) ([]byte, error) {
	for gi := range s.Groups {
		g := &s.Groups[gi]
		r := rec(make([]byte, StatementRecord))
		for i := range r {
			r[i] = ' '
		}
		var err error
		do := func(e error) {
			if err == nil && e != nil {
				err = fmt.Errorf("statement group %d header: %w", gi+1, e)
			}
		}
		r[0] = KindHeader
		copy(r[1:3], TypeStatement)
		r[3] = '0'
		do(r.putReiwa(5, g.Created, "作成日"))
		do(r.putReiwa(11, g.From, "勘定日(自)"))
		do(r.putReiwa(17, g.To, "勘定日(至)"))
		do(r.putDigits(23, 4, g.Account.Bank, "銀行コード"))
		do(r.putC(27, 15, g.Account.BankName, "銀行名"))
		do(r.putDigits(42, 3, g.Account.Branch, "支店コード"))
		do(r.putC(45, 15, g.Account.BranchName, "支店名"))
		copy(r[59:62], "000")
		if !ValidAccountType(g.Account.Type) {
			do(fmt.Errorf("%w: 預金種目 %d", ErrField, g.Account.Type))
		}
		do(r.putN(63, 1, uint64(g.Account.Type), "預金種目"))
		do(r.putDigits(64, 7, g.Account.Number, "口座番号"))
		do(r.putC(71, 40, g.Account.Name, "口座名"))
		pb := g.Passbook
		if pb == 0 {
			pb = 1
		}
		do(r.putN(112, 1, uint64(pb), "通帳・証書区分"))
		do(putBalance(r, 111, 113, g.Opening, "取引前残高"))
		if err != nil {
			return nil, err
		}
		b = append(append(b, r...), '\r', '\n')
		for ei := range g.Entries {
			e := &g.Entries[ei]
			for i := range r {
				r[i] = ' '
			}
			do := func(x error) {
				if err == nil && x != nil {
					err = fmt.Errorf("statement group %d entry %d: %w", gi+1, ei+1, x)
				}
			}
			r[0] = KindData
			do(r.putN(2, 8, e.Ref, "照会番号"))
			do(r.putReiwa(10, e.Date, "勘定日"))
			do(r.putReiwa(16, e.ValueDate, "預入・払出日"))
			if e.Credit {
				r[21] = '1'
			} else {
				r[21] = '2'
			}
			if !validTx(e.Kind) {
				do(fmt.Errorf("%w: 取引区分 %d", ErrField, e.Kind))
			}
			do(r.putN(23, 2, uint64(e.Kind), "取引区分"))
			if e.Amount == 0 {
				do(fmt.Errorf("%w: 取引金額 is zero", ErrField))
			}
			do(r.putN(25, 12, e.Amount, "取引金額"))
			do(r.putN(37, 12, 0, "うち他店券金額"))
			do(r.putN(49, 6, 0, "交換呈示日"))
			do(r.putN(55, 6, 0, "不渡返還日"))
			do(r.putN(61, 1, 0, "手形・小切手区分"))
			do(r.putN(62, 7, 0, "手形・小切手番号"))
			do(r.putN(69, 3, 0, "僚店番号"))
			do(r.putDigits(72, 10, e.SenderCode, "振込依頼人コード"))
			do(r.putC(82, 48, e.Sender, "振込依頼人名"))
			do(r.putC(130, 15, e.SenderBank, "仕向銀行名"))
			do(r.putC(145, 15, e.SenderBranch, "仕向店名"))
			do(r.putC(160, 20, e.Memo, "摘要内容"))
			do(r.putC(180, 20, e.EDI, "EDI情報"))
			if err != nil {
				return nil, err
			}
			b = append(append(b, r...), '\r', '\n')
		}
		for i := range r {
			r[i] = ' '
		}
		nc, nd, tc, td := g.Totals()
		r[0] = KindTrailer
		do(r.putN(2, 6, uint64(nc), "入金件数"))
		do(r.putN(8, 13, tc, "入金額合計"))
		do(r.putN(21, 6, uint64(nd), "出金件数"))
		do(r.putN(27, 13, td, "出金額合計"))
		do(putBalance(r, 40, 41, g.Closing, "取引後残高"))
		do(r.putN(55, 7, uint64(len(g.Entries)), "データ・レコード件数"))
		if g.Opening+int64(tc)-int64(td) != g.Closing {
			do(fmt.Errorf("%w: opening %d + credits %d - debits %d is not the closing %d", ErrTotals, g.Opening, tc, td, g.Closing))
		}
		if err != nil {
			return nil, err
		}
		b = append(append(b, r...), '\r', '\n')
	}
	r := rec(make([]byte, StatementRecord))
	for i := range r {
		r[i] = ' '
	}
	r[0] = KindEnd
	return append(append(b, r...), '\r', '\n'), nil
}

// ParseStatement reads a statement file. It checks every record's length,
// kind and fields; that each group's trailer counts and totals equal its
// entries and that its opening balance plus credits less debits is its
// closing balance; and that the file ends with one end record. Any
// failure is an error and no statement.
func ParseStatement(b []byte) (*Statement, error) {
	rs, err := records(b, StatementRecord)
	if err != nil {
		return nil, err
	}
	st := &Statement{}
	i := 0
	for {
		if i >= len(rs) {
			return nil, fmt.Errorf("%w: no end record (truncated file)", ErrFormat)
		}
		x := &reader{r: rs[i], n: i + 1}
		switch rs[i][0] {
		case KindEnd:
			x.blank(2, StatementRecord-1, ' ')
			if x.err != nil {
				return nil, x.err
			}
			if i != len(rs)-1 {
				return nil, fmt.Errorf("%w: %d records after the end record", ErrFormat, len(rs)-1-i)
			}
			if len(st.Groups) == 0 {
				return nil, fmt.Errorf("%w: no header record", ErrFormat)
			}
			return st, nil
		case KindHeader:
		default:
			return nil, fmt.Errorf("%w: record %d: kind %q where a header or the end record belongs", ErrFormat, i+1, rs[i][0])
		}
		var g StatementGroup
		if string(rs[i][1:3]) != TypeStatement {
			x.fail(2, "種別コード %q is not %s (入出金取引明細)", rs[i][1:3], TypeStatement)
		}
		if rs[i][3] != '0' {
			x.fail(4, "コード区分 %q is not 0 (JIS)", rs[i][3])
		}
		g.Created = x.reiwa(5, "作成日")
		g.From = x.reiwa(11, "勘定日(自)")
		g.To = x.reiwa(17, "勘定日(至)")
		g.Account.Bank = x.digits(23, 4, "銀行コード")
		g.Account.BankName = x.c(27, 15, "銀行名")
		g.Account.Branch = x.digits(42, 3, "支店コード")
		g.Account.BranchName = x.c(45, 15, "支店名")
		g.Account.Type = int(x.n64(63, 1, "預金種目"))
		g.Account.Number = x.digits(64, 7, "口座番号")
		g.Account.Name = x.c(71, 40, "口座名")
		g.Opening = x.balance(111, 113, "取引前残高")
		g.Passbook = int(x.n64(112, 1, "通帳・証書区分"))
		x.blank(127, 74, ' ')
		if x.err == nil && !ValidAccountType(g.Account.Type) {
			x.fail(63, "預金種目 %d", g.Account.Type)
		}
		if x.err == nil && g.To.Before(g.From) {
			x.fail(11, "勘定日 %s to %s runs backwards", g.From, g.To)
		}
		if x.err != nil {
			return nil, x.err
		}
		i++
		start := i
		for i < len(rs) && rs[i][0] == KindData {
			i++
		}
		if i-start > MaxRecords {
			return nil, fmt.Errorf("%w: %d data records, more than %d", ErrFormat, i-start, MaxRecords)
		}
		g.Entries = make([]Entry, i-start)
		for k := range g.Entries {
			x := &reader{r: rs[start+k], n: start + k + 1}
			e := &g.Entries[k]
			e.Ref = x.n64(2, 8, "照会番号")
			e.Date = x.reiwa(10, "勘定日")
			e.ValueDate = x.reiwa(16, "預入・払出日")
			switch rs[start+k][21] {
			case '1':
				e.Credit = true
			case '2':
			default:
				x.fail(22, "入払区分 %q is neither 1 nor 2", rs[start+k][21])
			}
			e.Kind = int(x.n64(23, 2, "取引区分"))
			e.Amount = x.n64(25, 12, "取引金額")
			x.n64(37, 12, "うち他店券金額")
			x.n64(49, 6, "交換呈示日")
			x.n64(55, 6, "不渡返還日")
			x.n64(61, 1, "手形・小切手区分")
			x.n64(62, 7, "手形・小切手番号")
			x.n64(69, 3, "僚店番号")
			e.SenderCode = trimZeros(x.digits(72, 10, "振込依頼人コード"))
			e.Sender = x.c(82, 48, "振込依頼人名")
			e.SenderBank = x.c(130, 15, "仕向銀行名")
			e.SenderBranch = x.c(145, 15, "仕向店名")
			e.Memo = x.c(160, 20, "摘要内容")
			e.EDI = x.c(180, 20, "EDI情報")
			x.blank(200, 1, ' ')
			if x.err == nil && !validTx(e.Kind) {
				x.fail(23, "取引区分 %d", e.Kind)
			}
			if x.err == nil && e.Amount == 0 {
				x.fail(25, "取引金額 is zero")
			}
			if x.err == nil && (e.Date.Before(g.From) || g.To.Before(e.Date)) {
				x.fail(10, "勘定日 %s outside the statement's %s to %s", e.Date, g.From, g.To)
			}
			if x.err != nil {
				return nil, x.err
			}
		}
		if i >= len(rs) {
			return nil, fmt.Errorf("%w: group %d has no trailer (truncated file)", ErrFormat, len(st.Groups)+1)
		}
		if rs[i][0] != KindTrailer {
			return nil, fmt.Errorf("%w: record %d: kind %q where the trailer belongs", ErrFormat, i+1, rs[i][0])
		}
		x = &reader{r: rs[i], n: i + 1}
		nc := x.n64(2, 6, "入金件数")
		tc := x.n64(8, 13, "入金額合計")
		nd := x.n64(21, 6, "出金件数")
		td := x.n64(27, 13, "出金額合計")
		g.Closing = x.balance(40, 41, "取引後残高")
		n := x.n64(55, 7, "データ・レコード件数")
		x.blank(62, 139, ' ')
		if x.err != nil {
			return nil, x.err
		}
		c, d, sc, sd := g.Totals()
		switch {
		case n != uint64(len(g.Entries)):
			return nil, fmt.Errorf("%w: group %d: trailer counts %d records, the file has %d", ErrTotals, len(st.Groups)+1, n, len(g.Entries))
		case nc != uint64(c) || tc != sc:
			return nil, fmt.Errorf("%w: group %d: trailer says %d credits of %d yen, the records %d of %d", ErrTotals, len(st.Groups)+1, nc, tc, c, sc)
		case nd != uint64(d) || td != sd:
			return nil, fmt.Errorf("%w: group %d: trailer says %d debits of %d yen, the records %d of %d", ErrTotals, len(st.Groups)+1, nd, td, d, sd)
		case sc > maxBalance || sd > maxBalance || g.Opening+int64(sc)-int64(sd) != g.Closing:
			return nil, fmt.Errorf("%w: group %d: opening %d + credits %d - debits %d is not the closing %d", ErrTotals, len(st.Groups)+1, g.Opening, sc, sd, g.Closing)
		}
		st.Groups = append(st.Groups, g)
		i++
	}
}

func (x *reader) balance(signPos, pos int, name string) int64 {
	sign := x.n64(signPos, 1, name+" (貸越区分)")
	v := int64(x.n64(pos, 14, name))
	switch sign {
	case 1:
		return v
	case 2:
		return -v
	}
	x.fail(signPos, "貸越区分 %d is neither 1 nor 2", sign)
	return 0
}

func trimZeros(s string) string {
	i := 0
	for i < len(s) && s[i] == '0' {
		i++
	}
	return s[i:]
}
