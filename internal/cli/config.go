package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// A role's configuration file (`--config FILE`) holds the same settings
// as its flags: every key is one of the role's flag names, without the
// dashes, and its value what the flag takes (a string, a number, a
// boolean, or a list for a repeatable flag). A flag given on the command
// line overrides the file's value; a key that is not one of the role's
// flags is an error, as is any value its flag refuses, and nothing runs.
//
// Two formats, by the file's extension: JSON (.json), one object; or
// TOML (.toml, anything else), flat: `key = value` lines, with strings
// ("basic" or 'literal'), integers, booleans and one-line arrays, and #
// comments. Tables, dates and multi-line values are refused with the line
// they are on.

// maxConfig bounds a configuration file.
const maxConfig = 1 << 20

// configValue is one key's value, as the flag's text (or texts, for a
// list).
type configValue struct {
	line  int // 0 for JSON
	texts []string
	list  bool
}

// loadConfig reads path and sets every flag of cmd it names that the
// command line did not set.
func loadConfig(cmd *cobra.Command, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	if len(b) > maxConfig {
		return fmt.Errorf("--config %s: larger than %d bytes", path, maxConfig)
	}
	var vals map[string]configValue
	var order []string
	if strings.EqualFold(filepath.Ext(path), ".json") {
		vals, order, err = parseJSONConfig(b)
	} else {
		vals, order, err = parseTOMLConfig(b)
	}
	if err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	return applyConfig(cmd.Flags(), path, vals, order)
}

// applyConfig checks every key before it sets any: a bad file leaves the
// flags as the command line gave them.
func applyConfig(fs *pflag.FlagSet, path string, vals map[string]configValue, order []string) error {
	where := func(key string) string {
		if l := vals[key].line; l > 0 {
			return fmt.Sprintf("%s:%d", path, l)
		}
		return path
	}
	for _, k := range order {
		fl := fs.Lookup(k)
		if fl == nil || k == "config" || k == "help" {
			return fmt.Errorf("--config %s: unknown key %q (keys are the command's flags: see --help)", where(k), k)
		}
		_, repeatable := fl.Value.(pflag.SliceValue)
		if vals[k].list && !repeatable {
			return fmt.Errorf("--config %s: %s takes one value, not a list", where(k), k)
		}
	}
	for _, k := range order {
		fl := fs.Lookup(k)
		if fl.Changed {
			continue // the command line overrides the file
		}
		v := vals[k]
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			if err := sv.Replace(v.texts); err != nil {
				return fmt.Errorf("--config %s: %s: %w", where(k), k, err)
			}
			fl.Changed = true
			continue
		}
		if err := fs.Set(k, v.texts[0]); err != nil {
			return fmt.Errorf("--config %s: %s: %w", where(k), k, err)
		}
	}
	return nil
}

// parseJSONConfig reads one JSON object of scalars and arrays of scalars.
func parseJSONConfig(b []byte) (map[string]configValue, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not a JSON object")
	}
	vals := map[string]configValue{}
	var order []string
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key := kt.(string)
		if _, dup := vals[key]; dup {
			return nil, nil, fmt.Errorf("key %q given twice", key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", key, err)
		}
		v, err := jsonValue(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", key, err)
		}
		vals[key] = v
		order = append(order, key)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("data after the object")
	}
	return vals, order, nil
}

func jsonValue(raw json.RawMessage) (configValue, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return configValue{}, err
		}
		v := configValue{list: true, texts: []string{}}
		for _, it := range items {
			s, err := jsonScalar(it)
			if err != nil {
				return configValue{}, err
			}
			v.texts = append(v.texts, s)
		}
		return v, nil
	}
	s, err := jsonScalar(raw)
	return configValue{texts: []string{s}}, err
}

func jsonScalar(raw json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("a value is a string, a number, a boolean or a list of them")
}

// parseTOMLConfig reads flat TOML: key = value lines.
func parseTOMLConfig(b []byte) (map[string]configValue, []string, error) {
	if !utf8.Valid(b) {
		return nil, nil, fmt.Errorf("not UTF-8")
	}
	vals := map[string]configValue{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), maxConfig)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			return nil, nil, fmt.Errorf("line %d: tables are not read: every key is a flag of the command, at the top level", n)
		}
		key, rest, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fmt.Errorf("line %d: want key = value", n)
		}
		key = strings.TrimSpace(key)
		if k, err := strconv.Unquote(key); err == nil && strings.HasPrefix(key, `"`) {
			key = k
		}
		if key == "" || strings.ContainsAny(key, " \t.") {
			return nil, nil, fmt.Errorf("line %d: key %q: a bare flag name", n, key)
		}
		if _, dup := vals[key]; dup {
			return nil, nil, fmt.Errorf("line %d: key %q given twice", n, key)
		}
		v, tail, err := tomlValue(strings.TrimSpace(rest))
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %s: %w", n, key, err)
		}
		if tail = strings.TrimSpace(tail); tail != "" && tail[0] != '#' {
			return nil, nil, fmt.Errorf("line %d: %s: unexpected %q after the value", n, key, tail)
		}
		v.line = n
		vals[key] = v
		order = append(order, key)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return vals, order, nil
}

// tomlValue reads one value from s and returns it with what follows.
func tomlValue(s string) (configValue, string, error) {
	if strings.HasPrefix(s, "[") {
		v := configValue{list: true, texts: []string{}}
		rest := strings.TrimSpace(s[1:])
		for {
			if strings.HasPrefix(rest, "]") {
				return v, rest[1:], nil
			}
			if rest == "" || rest[0] == '#' {
				return v, "", fmt.Errorf("an array ends on its line")
			}
			item, tail, err := tomlScalar(rest)
			if err != nil {
				return v, "", err
			}
			v.texts = append(v.texts, item)
			rest = strings.TrimSpace(tail)
			if strings.HasPrefix(rest, ",") {
				rest = strings.TrimSpace(rest[1:])
			} else if !strings.HasPrefix(rest, "]") {
				return v, "", fmt.Errorf("want , or ] in an array")
			}
		}
	}
	item, tail, err := tomlScalar(s)
	return configValue{texts: []string{item}}, tail, err
}

// tomlScalar reads a string, an integer or a boolean.
func tomlScalar(s string) (string, string, error) {
	switch {
	case strings.HasPrefix(s, `"""`), strings.HasPrefix(s, "'''"):
		return "", "", fmt.Errorf("multi-line strings are not read")
	case strings.HasPrefix(s, `"`):
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				v, err := strconv.Unquote(s[:i+1])
				if err != nil {
					return "", "", fmt.Errorf("string %s: %w", s[:i+1], err)
				}
				return v, s[i+1:], nil
			}
		}
		return "", "", fmt.Errorf("a string ends on its line")
	case strings.HasPrefix(s, "'"):
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", "", fmt.Errorf("a string ends on its line")
		}
		return s[1 : end+1], s[end+2:], nil
	}
	end := strings.IndexAny(s, " \t,]#")
	if end < 0 {
		end = len(s)
	}
	tok := s[:end]
	switch tok {
	case "true", "false":
		return tok, s[end:], nil
	}
	digits := strings.ReplaceAll(tok, "_", "")
	if _, err := strconv.ParseInt(digits, 10, 64); err == nil {
		return digits, s[end:], nil
	}
	return "", "", fmt.Errorf("value %q: a quoted string, an integer or a boolean", tok)
}
