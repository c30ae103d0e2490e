package zengin

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var trust = Account{Bank: "0397", BankName: "ｷﾝｺｼﾝﾀｸ", Branch: "100", BranchName: "ﾎﾝﾃﾝ", Type: Ordinary, Number: "1000001", Name: "ｶ)ｷﾝｺ ｺｷﾔｸｸﾌﾞﾝｶﾝﾘｼﾝﾀｸ"}

func sampleStatement() *Statement {
	d := Date{2026, 12, 1}
	return &Statement{Groups: []StatementGroup{{
		Created: d, From: d, To: d, Account: trust, Passbook: 1, Opening: 1_000_000, Closing: 1_000_000 + 50_000 + 120_000 - 30_000,
		Entries: []Entry{
			{Ref: 1, Date: d, ValueDate: d, Credit: true, Kind: TxTransfer, Amount: 50_000, SenderCode: "1234567890", Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", SenderBank: "ﾐﾂﾋﾞｼ", SenderBranch: "ｼﾌﾞﾔ", Memo: "1002000001"},
			{Ref: 2, Date: d, ValueDate: d, Credit: true, Kind: TxTransfer, Amount: 120_000, Sender: "ｽｽﾞｷ ﾊﾅｺ", Memo: "1002000002"},
			{Ref: 3, Date: d, ValueDate: d, Credit: false, Kind: TxTransfer, Amount: 30_000, Memo: "ｿｳｺﾞｳﾌﾘｺﾐ"},
		},
	}}}
}

func sampleTransfers() *TransferFile {
	from := trust
	from.Name = "" // a transfer header names the requester, not the account
	return &TransferFile{RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ", Month: 12, Day: 2, From: from,
		Payments: []Payment{
			{To: Account{Bank: "0005", BankName: "ﾐﾂﾋﾞｼﾕｰｴﾌｼﾞｴｲ", Branch: "135", BranchName: "ｼﾌﾞﾔ", Type: Ordinary, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}, Amount: 25_000, Code1: 1, Code2: 7},
			{To: Account{Bank: "0009", Branch: "001", Type: Current, Number: "7654321", Name: "ｽｽﾞｷ ﾊﾅｺ"}, Amount: 9_999_999_999, Code1: 2, Code2: 8},
		}}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%s: %v (run with -update)", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got %q\nwant %q", name, got, want)
	}
}

// field is a column range of a published layout and what it must hold.
type field struct {
	name     string
	pos, len int
	want     string
}

func checkLayout(t *testing.T, rec []byte, size int, fields []field) {
	t.Helper()
	if len(rec) != size {
		t.Fatalf("record of %d bytes, want %d", len(rec), size)
	}
	end := 0
	for _, f := range fields {
		if f.pos != end+1 {
			t.Errorf("%s starts at %d, the field before ends at %d", f.name, f.pos, end)
		}
		end = f.pos + f.len - 1
		got := string(rec[f.pos-1 : f.pos-1+f.len])
		if f.want != "" {
			w, _ := Encode(f.want)
			if len(w) < f.len && strings.Trim(string(w), "0123456789") == "" && f.want[0] >= '0' && f.want[0] <= '9' && len(f.want) == f.len {
				w = []byte(f.want)
			}
			for len(w) < f.len {
				w = append(w, ' ')
			}
			if got != string(w) {
				t.Errorf("%s (columns %d-%d) = %q; want %q", f.name, f.pos, end, got, w)
			}
		}
	}
	if end != size {
		t.Errorf("fields end at %d, the record at %d", end, size)
	}
}

// TestStatementLayout checks each record of a statement against the
// published layout of 入出金取引明細 (全銀協, 200 bytes).
func TestStatementLayout(t *testing.T) {
	b, err := AppendStatement(nil, sampleStatement())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "statement.golden", b)
	recs := bytes.Split(bytes.TrimSuffix(b, []byte("\r\n")), []byte("\r\n"))
	if len(recs) != 6 {
		t.Fatalf("%d records; want header, 3 data, trailer, end", len(recs))
	}
	names := []string{"statement_header", "statement_data", "", "", "statement_trailer", "statement_end"}
	for i, n := range names {
		if n != "" {
			golden(t, n+".golden", recs[i])
		}
	}
	checkLayout(t, recs[0], 200, []field{
		{"データ区分", 1, 1, "1"}, {"種別コード", 2, 2, "03"}, {"コード区分", 4, 1, "0"},
		{"作成日", 5, 6, "081201"}, {"勘定日(自)", 11, 6, "081201"}, {"勘定日(至)", 17, 6, "081201"},
		{"銀行コード", 23, 4, "0397"}, {"銀行名", 27, 15, "ｷﾝｺｼﾝﾀｸ"}, {"支店コード", 42, 3, "100"}, {"支店名", 45, 15, "ﾎﾝﾃﾝ"},
		{"ダミー", 60, 3, "000"}, {"預金種目", 63, 1, "1"}, {"口座番号", 64, 7, "1000001"}, {"口座名", 71, 40, trust.Name},
		{"貸越区分", 111, 1, "1"}, {"通帳・証書区分", 112, 1, "1"}, {"取引前残高", 113, 14, "00000001000000"}, {"ダミー", 127, 74, ""},
	})
	checkLayout(t, recs[1], 200, []field{
		{"データ区分", 1, 1, "2"}, {"照会番号", 2, 8, "00000001"}, {"勘定日", 10, 6, "081201"}, {"預入・払出日", 16, 6, "081201"},
		{"入払区分", 22, 1, "1"}, {"取引区分", 23, 2, "11"}, {"取引金額", 25, 12, "000000050000"}, {"うち他店券金額", 37, 12, "000000000000"},
		{"交換呈示日", 49, 6, "000000"}, {"不渡返還日", 55, 6, "000000"}, {"手形・小切手区分", 61, 1, "0"}, {"手形・小切手番号", 62, 7, "0000000"},
		{"僚店番号", 69, 3, "000"}, {"振込依頼人コード", 72, 10, "1234567890"}, {"振込依頼人名", 82, 48, "ﾔﾏﾀﾞ ﾀﾛｳ"},
		{"仕向銀行名", 130, 15, "ﾐﾂﾋﾞｼ"}, {"仕向店名", 145, 15, "ｼﾌﾞﾔ"}, {"摘要内容", 160, 20, "1002000001"}, {"EDI情報", 180, 20, ""}, {"ダミー", 200, 1, ""},
	})
	checkLayout(t, recs[4], 200, []field{
		{"データ区分", 1, 1, "8"}, {"入金件数", 2, 6, "000002"}, {"入金額合計", 8, 13, "0000000170000"},
		{"出金件数", 21, 6, "000001"}, {"出金額合計", 27, 13, "0000000030000"}, {"貸越区分", 40, 1, "1"},
		{"取引後残高", 41, 14, "00000001140000"}, {"データ・レコード件数", 55, 7, "0000003"}, {"ダミー", 62, 139, ""},
	})
	checkLayout(t, recs[5], 200, []field{{"データ区分", 1, 1, "9"}, {"ダミー", 2, 199, ""}})
	got, err := ParseStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sampleStatement()) {
		t.Errorf("ParseStatement(AppendStatement(s)) = %+v; want %+v", got, sampleStatement())
	}
	// Without CRLF it reads the same.
	plain := bytes.ReplaceAll(b, []byte("\r\n"), nil)
	if got2, err := ParseStatement(plain); err != nil || !reflect.DeepEqual(got2, got) {
		t.Errorf("ParseStatement(no CRLF) = %v", err)
	}
}

// TestTransferLayout checks each record of a transfer file and of a
// result file against the published layout of 総合振込 (120 bytes).
func TestTransferLayout(t *testing.T) {
	b, err := AppendTransferFile(nil, sampleTransfers())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "transfer.golden", b)
	recs := bytes.Split(bytes.TrimSuffix(b, []byte("\r\n")), []byte("\r\n"))
	if len(recs) != 5 {
		t.Fatalf("%d records", len(recs))
	}
	for i, n := range []string{"transfer_header", "transfer_data", "", "transfer_trailer", "transfer_end"} {
		if n != "" {
			golden(t, n+".golden", recs[i])
		}
	}
	checkLayout(t, recs[0], 120, []field{
		{"データ区分", 1, 1, "1"}, {"種別コード", 2, 2, "21"}, {"コード区分", 4, 1, "0"}, {"振込依頼人コード", 5, 10, "1234567890"},
		{"振込依頼人名", 15, 40, "ｶ)ｷﾝｺ"}, {"振込指定日", 55, 4, "1202"}, {"仕向銀行番号", 59, 4, "0397"}, {"仕向銀行名", 63, 15, "ｷﾝｺｼﾝﾀｸ"},
		{"仕向支店番号", 78, 3, "100"}, {"仕向支店名", 81, 15, "ﾎﾝﾃﾝ"}, {"預金種目", 96, 1, "1"}, {"口座番号", 97, 7, "1000001"}, {"ダミー", 104, 17, ""},
	})
	checkLayout(t, recs[1], 120, []field{
		{"データ区分", 1, 1, "2"}, {"被仕向銀行番号", 2, 4, "0005"}, {"被仕向銀行名", 6, 15, "ﾐﾂﾋﾞｼﾕｰｴﾌｼﾞｴｲ"}, {"被仕向支店番号", 21, 3, "135"},
		{"被仕向支店名", 24, 15, "ｼﾌﾞﾔ"}, {"手形交換所番号", 39, 4, "0000"}, {"預金種目", 43, 1, "1"}, {"口座番号", 44, 7, "0123456"},
		{"受取人名", 51, 30, "ﾔﾏﾀﾞ ﾀﾛｳ"}, {"振込金額", 81, 10, "0000025000"}, {"新規コード", 91, 1, "0"}, {"顧客コード1", 92, 10, "0000000001"},
		{"顧客コード2", 102, 10, "0000000007"}, {"振込指定区分", 112, 1, "7"}, {"識別表示", 113, 1, ""}, {"ダミー", 114, 7, ""},
	})
	checkLayout(t, recs[3], 120, []field{{"データ区分", 1, 1, "8"}, {"合計件数", 2, 6, "000002"}, {"合計金額", 8, 12, "010000024999"}, {"ダミー", 20, 101, ""}})
	checkLayout(t, recs[4], 120, []field{{"データ区分", 1, 1, "9"}, {"ダミー", 2, 119, ""}})
	got, err := ParseTransferFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sampleTransfers()) {
		t.Errorf("ParseTransferFile(AppendTransferFile(f)) = %+v", got)
	}
	// The result file: the same with column 114 set.
	res := sampleTransfers()
	res.Payments[0].Result, res.Payments[1].Result = ResultDone, ResultReturned
	rb, err := AppendTransferFile(nil, res)
	if err != nil {
		t.Fatal(err)
	}
	rr := bytes.Split(rb, []byte("\r\n"))
	golden(t, "result_data.golden", rr[1])
	if rr[1][113] != '0' || rr[2][113] != '2' {
		t.Errorf("result columns = %q %q", rr[1][113], rr[2][113])
	}
	if got, err := ParseTransferFile(rb); err != nil || got.Payments[1].Result != ResultReturned {
		t.Errorf("ParseTransferFile(result) = %v, %v", got, err)
	}
}

func TestBadFiles(t *testing.T) {
	st, _ := AppendStatement(nil, sampleStatement())
	tf, _ := AppendTransferFile(nil, sampleTransfers())
	set := func(b []byte, pos int, s string) []byte {
		c := bytes.Clone(b)
		copy(c[pos:], s)
		return c
	}
	cases := []struct {
		name  string
		parse func([]byte) error
		in    []byte
		want  error
	}{
		{"statement truncated mid-record", pst, st[:len(st)-50], ErrFormat},
		{"statement without end record", pst, st[:len(st)-202], ErrFormat},
		{"statement without trailer", pst, append(bytes.Clone(st[:202*4]), st[202*5:]...), ErrFormat},
		{"statement empty", pst, nil, ErrFormat},
		{"statement trailer credit total off", pst, set(st, 202*4+7, "0000000170001"), ErrTotals},
		{"statement trailer count off", pst, set(st, 202*4+54, "0000004"), ErrTotals},
		{"statement closing balance off", pst, set(st, 202*4+40, "00000001140001"), ErrTotals},
		{"statement amount not digits", pst, set(st, 202+24, "00000005000X"), ErrFormat},
		{"statement amount zero", pst, zeroEntry(st), ErrFormat},
		{"statement name not Zengin characters", pst, set(st, 202+81, "\x81\x40"), ErrFormat},
		{"statement kind 4", pst, set(st, 202+22, "4"), ErrFormat},
		{"statement wrong type code", pst, set(st, 1, "01"), ErrFormat},
		{"statement date outside range", pst, set(st, 202+9, "081202"), ErrFormat},
		{"statement bad date", pst, set(st, 4, "081340"), ErrFormat},
		{"statement record after end", pst, append(bytes.Clone(st), st[202*5:]...), ErrFormat},
		{"statement 199-byte record", pst, st[1:], ErrFormat},
		{"transfer truncated", ptf, tf[:len(tf)-122], ErrFormat},
		{"transfer truncated mid-record", ptf, tf[:len(tf)-10], ErrFormat},
		{"transfer total off", ptf, set(tf, 122*3+7, "010000025000"), ErrTotals},
		{"transfer count off", ptf, set(tf, 122*3+1, "000003"), ErrTotals},
		{"transfer amount zero", ptf, set(tf, 122+80, "0000000000"), ErrFormat},
		{"transfer name not Zengin characters", ptf, set(tf, 122+50, "abc"), ErrFormat},
		{"transfer bad result code", ptf, set(tf, 122+113, "X"), ErrFormat},
		{"transfer not a header first", ptf, tf[122:], ErrFormat},
		{"transfer wrong type", ptf, set(tf, 1, "11"), ErrFormat},
	}
	for _, c := range cases {
		if err := c.parse(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v; want %v", c.name, err, c.want)
		}
	}
}

func pst(b []byte) error { _, err := ParseStatement(b); return err }
func ptf(b []byte) error { _, err := ParseTransferFile(b); return err }

// zeroEntry sets the third entry's amount (a debit of 30,000) to zero and
// the trailer's debits with it, so that only the zero is wrong.
func zeroEntry(st []byte) []byte {
	c := bytes.Clone(st)
	copy(c[202*3+24:], "000000000000")
	copy(c[202*4+26:], "0000000000000")
	copy(c[202*4+40:], "00000001170000")
	return c
}

func TestEncodeRefuses(t *testing.T) {
	f := sampleTransfers()
	f.Payments[0].To.Name = "山田太郎"
	if _, err := AppendTransferFile(nil, f); !errors.Is(err, ErrCharset) {
		t.Errorf("kanji payee: err = %v; want ErrCharset", err)
	}
	f = sampleTransfers()
	f.Payments[0].Amount = 0
	if _, err := AppendTransferFile(nil, f); !errors.Is(err, ErrField) {
		t.Errorf("zero amount: err = %v", err)
	}
	f = sampleTransfers()
	f.Payments[0].Amount = 10_000_000_000
	if _, err := AppendTransferFile(nil, f); !errors.Is(err, ErrField) {
		t.Errorf("11-digit amount: err = %v", err)
	}
	f = sampleTransfers()
	f.Payments[0].To.Name = strings.Repeat("ｱ", 31)
	if _, err := AppendTransferFile(nil, f); !errors.Is(err, ErrField) {
		t.Errorf("31-character name: err = %v", err)
	}
	s := sampleStatement()
	s.Groups[0].Closing++
	if _, err := AppendStatement(nil, s); !errors.Is(err, ErrTotals) {
		t.Errorf("statement closing off: err = %v", err)
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"ヤマダ　タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"},
		{"やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ"},
		{"シャイン・ポップ", "ｼﾔｲﾝ ﾎﾟﾂﾌﾟ"},
		{"ｼｬｲﾝ", "ｼﾔｲﾝ"},
		{"  Ｙａｍａｄａ  taro ", "YAMADA TARO"},
		{"ヴィ", "ｳﾞｲ"},
	} {
		got, err := Normalize(c.in)
		if err != nil || got != c.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := Normalize("山田"); !errors.Is(err, ErrCharset) {
		t.Errorf("Normalize(kanji) err = %v", err)
	}
	if !SameName("ﾔﾏﾀﾞﾀﾛｳ", "ヤマダ タロウ") || SameName("ﾔﾏﾀﾞ ｼﾞﾛｳ", "ヤマダ タロウ") || SameName("", "") {
		t.Error("SameName")
	}
}

func FuzzParseStatement(f *testing.F) {
	b, _ := AppendStatement(nil, sampleStatement())
	f.Add(b)
	f.Add(bytes.ReplaceAll(b, []byte("\r\n"), nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseStatement(in)
		if err != nil {
			return
		}
		out, err := AppendStatement(nil, s)
		if err != nil {
			t.Fatalf("a parsed statement does not encode: %v", err)
		}
		s2, err := ParseStatement(out)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParseTransferFile(f *testing.F) {
	b, _ := AppendTransferFile(nil, sampleTransfers())
	f.Add(b)
	f.Add(bytes.ReplaceAll(b, []byte("\r\n"), nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		tf, err := ParseTransferFile(in)
		if err != nil {
			return
		}
		out, err := AppendTransferFile(nil, tf)
		if err != nil {
			t.Fatalf("a parsed file does not encode: %v", err)
		}
		tf2, err := ParseTransferFile(out)
		if err != nil || !reflect.DeepEqual(tf, tf2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
