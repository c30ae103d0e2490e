// Package zengin reads and writes the fixed-width files of the Japanese
// Bankers Association (全銀協) that kinko exchanges with its bank: the
// statement of deposits and withdrawals (入出金取引明細, 種別コード 03,
// 200-byte records) and the general transfer file (総合振込, 種別コード 21,
// 120-byte records) with the bank's result file in the same layout. Every
// file is a header, data records and a trailer per group, then one end
// record; text fields are JIS X 0201 (ASCII and half-width katakana, one
// byte a character), numbers right-aligned with zeros, text left-aligned
// with spaces. A parser checks every record's length, kind, digits and
// characters, and the trailer's counts and totals against the data, and
// returns nothing but an error for a file that fails any check.
package zengin

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrCharset reports a character the Zengin character set cannot hold.
var ErrCharset = errors.New("zengin: character outside the Zengin character set")

// allowedASCII are the single-byte Latin characters a Zengin text field
// may hold: digits, capital letters, space and ( ) , - . / \ (the yen sign
// of JIS X 0201 is byte 0x5C).
func allowedASCII(b byte) bool {
	switch {
	case b >= '0' && b <= '9', b >= 'A' && b <= 'Z':
		return true
	}
	return strings.IndexByte(" (),-./\\", b) >= 0
}

// allowedKana are the JIS X 0201 katakana bytes a Zengin field may hold:
// 「 」 (0xA2, 0xA3), ｦ (0xA6), the long mark ｰ (0xB0), ｱ to ﾝ and the
// voicing marks ﾞ ﾟ. The small kana ｧ to ｯ are not in the set: banks
// write them large (ｼﾔｲﾝ for シャイン).
func allowedKana(b byte) bool {
	return b == 0xA2 || b == 0xA3 || b == 0xA6 || (b >= 0xB0 && b <= 0xDF)
}

// Allowed reports whether b is a byte of the Zengin character set.
func Allowed(b byte) bool { return allowedASCII(b) || allowedKana(b) }

// Encode converts s, in ASCII and half-width katakana (U+FF61 to U+FF9F),
// to JIS X 0201 bytes. A character outside the Zengin set is ErrCharset,
// naming it.
func Encode(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i, r := range s {
		var b byte
		switch {
		case r < 0x80:
			b = byte(r)
		case r >= 0xFF61 && r <= 0xFF9F:
			b = byte(r - 0xFF61 + 0xA1)
		case r == '¥':
			b = 0x5C
		default:
			return nil, fmt.Errorf("%w: %q at byte %d", ErrCharset, r, i)
		}
		if !Allowed(b) {
			return nil, fmt.Errorf("%w: %q at byte %d", ErrCharset, r, i)
		}
		out = append(out, b)
	}
	return out, nil
}

// Decode converts JIS X 0201 bytes of the Zengin set to a string, the
// katakana as half-width (U+FF61 to U+FF9F).
func Decode(b []byte) (string, error) {
	var sb strings.Builder
	sb.Grow(len(b) * 2)
	for i, c := range b {
		if !Allowed(c) {
			return "", fmt.Errorf("%w: byte 0x%02X at %d", ErrCharset, c, i)
		}
		if c < 0x80 {
			sb.WriteByte(c)
		} else {
			sb.WriteRune(rune(c) - 0xA1 + 0xFF61)
		}
	}
	return sb.String(), nil
}

// fullToHalf maps full-width katakana to half-width: the base letter and,
// for voiced and semi-voiced letters, ﾞ or ﾟ after it.
var fullToHalf = map[rune]string{}

func init() {
	base := "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
	half := "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝ"
	hr := []rune(half)
	for i, r := range []rune(base) {
		fullToHalf[r] = string(hr[i])
	}
	voiced := map[string]string{"ガ": "ｶ", "ギ": "ｷ", "グ": "ｸ", "ゲ": "ｹ", "ゴ": "ｺ", "ザ": "ｻ", "ジ": "ｼ", "ズ": "ｽ", "ゼ": "ｾ", "ゾ": "ｿ",
		"ダ": "ﾀ", "ヂ": "ﾁ", "ヅ": "ﾂ", "デ": "ﾃ", "ド": "ﾄ", "バ": "ﾊ", "ビ": "ﾋ", "ブ": "ﾌ", "ベ": "ﾍ", "ボ": "ﾎ", "ヴ": "ｳ"}
	for k, v := range voiced {
		r, _ := utf8.DecodeRuneInString(k)
		fullToHalf[r] = v + "ﾞ"
	}
	for k, v := range map[string]string{"パ": "ﾊ", "ピ": "ﾋ", "プ": "ﾌ", "ペ": "ﾍ", "ポ": "ﾎ"} {
		r, _ := utf8.DecodeRuneInString(k)
		fullToHalf[r] = v + "ﾟ"
	}
	// Small kana are written large.
	for k, v := range map[string]string{"ァ": "ｱ", "ィ": "ｲ", "ゥ": "ｳ", "ェ": "ｴ", "ォ": "ｵ", "ッ": "ﾂ", "ャ": "ﾔ", "ュ": "ﾕ", "ョ": "ﾖ", "ヮ": "ﾜ",
		"ー": "ｰ", "・": " ", "　": " ", "（": "(", "）": ")", "－": "-", "．": ".", "／": "/"} {
		r, _ := utf8.DecodeRuneInString(k)
		fullToHalf[r] = v
	}
	for k, v := range map[string]string{"ｧ": "ｱ", "ｨ": "ｲ", "ｩ": "ｳ", "ｪ": "ｴ", "ｫ": "ｵ", "ｯ": "ﾂ", "ｬ": "ﾔ", "ｭ": "ﾕ", "ｮ": "ﾖ"} {
		r, _ := utf8.DecodeRuneInString(k)
		fullToHalf[r] = v
	}
}

// Normalize writes a name the way a bank writes it in a Zengin field:
// hiragana and full-width katakana as half-width katakana (small kana
// large, voiced letters with ﾞ or ﾟ), full-width Latin as ASCII, letters
// capital, runs of spaces as one, no space at either end. A character
// with no Zengin form is ErrCharset. Names are compared in this form.
func Normalize(s string) (string, error) {
	var sb strings.Builder
	space := false
	for i, r := range s {
		switch {
		case r >= 'ぁ' && r <= 'ゖ':
			r += 'ァ' - 'ぁ'
		case r >= 'Ａ' && r <= 'Ｚ', r >= 'ａ' && r <= 'ｚ', r >= '０' && r <= '９':
			r -= 'Ａ' - 'A'
		}
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		var part string
		if h, ok := fullToHalf[r]; ok {
			part = h
		} else {
			part = string(r)
		}
		if part == " " {
			space = sb.Len() > 0
			continue
		}
		if _, err := Encode(part); err != nil {
			return "", fmt.Errorf("%w: %q at byte %d", ErrCharset, r, i)
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteString(part)
	}
	return sb.String(), nil
}

// SameName reports whether two names are the same in Zengin form, spaces
// ignored (banks differ in where they put the space between family and
// given name).
func SameName(a, b string) bool {
	na, err1 := Normalize(a)
	nb, err2 := Normalize(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.ReplaceAll(na, " ", "") == strings.ReplaceAll(nb, " ", "") && na != ""
}
