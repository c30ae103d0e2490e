package bankcode

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestBuiltin(t *testing.T) {
	m := Builtin()
	banks, branches := m.Count()
	if banks != 8 || branches < 20 {
		t.Fatalf("Builtin() = %d banks, %d branches; want the 8 sample banks", banks, branches)
	}
	for _, c := range []struct{ bank, branch, kana, name string }{
		{"0001", "001", "ﾄｳｷﾖｳ", "東京営業部"},
		{"0005", "135", "ｼﾌﾞﾔ", "渋谷"},
		{"0009", "200", "ﾎﾝﾃﾝ", "本店営業部"},
		{"0033", "002", "ｽｽﾞﾒ", "すずめ"},
		{"0036", "201", "ｼﾞﾔｽﾞ", "ジャズ"},
		{"0038", "106", "ﾎｳｼﾞﾝﾀﾞｲｲﾁ", "法人第一"},
		{"9900", "018", "ｾﾞﾛｲﾁﾊﾁ", "〇一八"},
	} {
		_, br, err := m.Lookup(c.bank, c.branch)
		if err != nil || br.Kana != c.kana || br.Name != c.name {
			t.Errorf("Lookup(%s, %s) = %+v, %v; want %s %s", c.bank, c.branch, br, err, c.kana, c.name)
		}
	}
	if b, _ := m.Bank("0005"); b.Kana != "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ" || b.Name != "三菱ＵＦＪ" {
		t.Errorf("Bank(0005) = %+v", b)
	}
	if _, _, err := m.Lookup("0397", "100"); !errors.Is(err, ErrUnknownBank) || !strings.Contains(err.Error(), `bank "0397"`) {
		t.Errorf("Lookup of a bank not in the sample = %v; want ErrUnknownBank naming it", err)
	}
	if _, _, err := m.Lookup("0005", "999"); !errors.Is(err, ErrUnknownBranch) || !strings.Contains(err.Error(), `branch "999" of bank 0005 (三菱ＵＦＪ)`) {
		t.Errorf("Lookup of an unknown branch = %v; want ErrUnknownBranch naming the branch and the bank", err)
	}
	if got := m.Describe("0005", "135"); got != "三菱ＵＦＪ 渋谷 (0005-135)" {
		t.Errorf("Describe = %q", got)
	}
	again, err := Parse(m.Encode())
	if err != nil || !reflect.DeepEqual(again, m) || again.Hash() != m.Hash() {
		t.Fatalf("Parse(Encode(Builtin())) = %v; want the same master", err)
	}
}

func TestParseGood(t *testing.T) {
	// A header, a BOM, quotes, a comment, a blank line, CRLF, rows out of
	// order, kana in hiragana, full-width and half-width.
	in := "\xef\xbb\xbf" + Header + "\r\n# a comment\r\n\r\n" +
		`"0005","135","ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ","しぶや","三菱ＵＦＪ","渋谷"` + "\r\n" +
		"0005,001,ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ,ホンテン,三菱ＵＦＪ,本店\r\n" +
		"0001, 001 ,ミズホ,トウキヨウ,みずほ,東京営業部\r\n"
	m, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Master{Banks: []Bank{
		{Code: "0001", Kana: "ﾐｽﾞﾎ", Name: "みずほ", Branches: []Branch{{"001", "ﾄｳｷﾖｳ", "東京営業部"}}},
		{Code: "0005", Kana: "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ", Name: "三菱ＵＦＪ", Branches: []Branch{{"001", "ﾎﾝﾃﾝ", "本店"}, {"135", "ｼﾌﾞﾔ", "渋谷"}}},
	}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Parse = %+v; want %+v", m, want)
	}
	if got := string(m.Encode()); got != "0001,001,ﾐｽﾞﾎ,ﾄｳｷﾖｳ,みずほ,東京営業部\n0005,001,ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店\n0005,135,ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ,ｼﾌﾞﾔ,三菱ＵＦＪ,渋谷\n" {
		t.Errorf("Encode = %q", got)
	}
}

func TestParseBad(t *testing.T) {
	good := "0005,135,ﾐﾂﾋﾞｼ,ｼﾌﾞﾔ,三菱ＵＦＪ,渋谷\n"
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty", "", "no branches"},
		{"only a header", Header + "\n", "no branches"},
		{"five fields", good + "0005,001,ﾐﾂﾋﾞｼ,ﾎﾝﾃﾝ,三菱ＵＦＪ\n", "line 2: wrong number of fields"},
		{"bank code of 3 digits", good + "005,001,ﾐﾂﾋﾞｼ,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店\n", `line 2: bank code "005" is not 4 digits`},
		{"branch code letters", good + "0005,0A1,ﾐﾂﾋﾞｼ,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店\n", `line 2: branch code "0A1" is not 3 digits`},
		{"kanji for kana", "0005,001,三菱,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店\n", "line 1: bank name kana"},
		{"kana too long", "0005,001,ﾐﾂﾋﾞｼ,ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀ,三菱ＵＦＪ,本店\n", "line 1: branch name kana"},
		{"empty kana", "0005,001,ﾐﾂﾋﾞｼ,,三菱ＵＦＪ,本店\n", "line 1: branch name kana"},
		{"empty name", "0005,001,ﾐﾂﾋﾞｼ,ﾎﾝﾃﾝ,三菱ＵＦＪ,\n", "line 1: branch name"},
		{"control character", "0005,001,ﾐﾂﾋﾞｼ,ﾎﾝﾃﾝ,\"三菱\tＵＦＪ\",本店\n", "line 1: bank name"},
		{"Shift_JIS", "0005,001,ﾐﾂﾋﾞｼ,ﾎﾝﾃﾝ,\x8eO\x95H,本店\n", "line 1: bank name"},
		{"bad quote", good + "0005,\"001,ﾐﾂﾋﾞｼ,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店\n", "line 2"},
		{"duplicate branch", good + "0001,001,ﾐｽﾞﾎ,ﾄｳｷﾖｳ,みずほ,東京営業部\n0005,135,ﾐﾂﾋﾞｼ,ｼﾌﾞﾔ,三菱ＵＦＪ,渋谷\n", "line 3: branch 0005-135 is already on line 1"},
		{"bank named two ways", good + "0005,001,ﾐﾂｲ,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店\n", "bank 0005 is"},
		{"header not first", good + Header + "\n", `line 2: bank code "bank_code"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse([]byte(c.in))
			if m != nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse(%q) = %v, %v; want ErrFormat with %q", c.in, m, err, c.want)
			}
		})
	}
	big := bytes.Repeat([]byte("#"), MaxFileBytes+1)
	if _, err := Parse(big); !errors.Is(err, ErrFormat) {
		t.Errorf("Parse of %d bytes = %v; want refused", len(big), err)
	}
}

// FuzzParse: whatever parses encodes canonically, parses back to the same
// master, and every lookup of its codes finds them.
func FuzzParse(f *testing.F) {
	f.Add(builtinCSV)
	f.Add([]byte(Header + "\n0005,135,ﾐﾂﾋﾞｼ,ｼﾌﾞﾔ,三菱ＵＦＪ,渋谷\n"))
	f.Add([]byte("0005,\"135\",\"ﾐﾂﾋﾞｼ\",しぶや,三菱ＵＦＪ,渋谷\r\n0005,001,ﾐﾂﾋﾞｼ,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店"))
	f.Add([]byte("0005,135,ﾐﾂﾋﾞｼ,ｼﾌﾞﾔ,三菱ＵＦＪ\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if m != nil || !errors.Is(err, ErrFormat) {
				t.Fatalf("Parse = %v, %v; want nil and ErrFormat", m, err)
			}
			return
		}
		enc := m.Encode()
		again, err := Parse(enc)
		if err != nil || !reflect.DeepEqual(again, m) || !bytes.Equal(again.Encode(), enc) {
			t.Fatalf("Parse(Encode(m)) = %v; not m:\n%q", err, enc)
		}
		for _, bk := range m.Banks {
			for _, br := range bk.Branches {
				if _, _, err := m.Lookup(bk.Code, br.Code); err != nil {
					t.Fatalf("Lookup(%s, %s) = %v", bk.Code, br.Code, err)
				}
			}
		}
	})
}
