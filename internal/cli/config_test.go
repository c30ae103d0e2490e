package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/spf13/cobra"

	"kinko/internal/cosigner"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
)

// configured is what a test command received.
type configured struct {
	addr    string
	n       int32
	every   time.Duration
	on      bool
	arr     []string
	slice   []string
	needed  string
	logLvl  string
	ranWith bool
}

// configCmd is a command with one flag of each kind the roles use, a
// required one among them, and the role flags.
func configCmd(got *configured) *cobra.Command {
	var rf roleFlags
	cmd := &cobra.Command{Use: "role", Args: cobra.NoArgs, SilenceUsage: true, SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error { got.ranWith, got.logLvl = true, rf.logLevel; return nil }}
	f := cmd.Flags()
	f.StringVar(&got.addr, "addr", "127.0.0.1:8080", "")
	f.Int32Var(&got.n, "confirmations", 6, "")
	f.DurationVar(&got.every, "witness-every", 30*time.Second, "")
	f.BoolVar(&got.on, "notify", true, "")
	f.StringArrayVar(&got.arr, "witness", nil, "")
	f.StringSliceVar(&got.slice, "origin", nil, "")
	f.StringVar(&got.needed, "key", "", "")
	cmd.MarkFlagRequired("key")
	rf.add(cmd)
	return cmd
}

func runConfig(t *testing.T, file, text string, args ...string) (configured, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var got configured
	cmd := configCmd(&got)
	cmd.SetArgs(append([]string{"--config", path}, args...))
	return got, cmd.Execute()
}

// TestConfigFile: a role's file sets its flags, TOML or JSON alike; the
// command line overrides it; a required flag may come from it.
func TestConfigFile(t *testing.T) {
	toml := `# the core's host
addr = "10.0.0.5:8443"   # the API
confirmations = 1_0
witness-every = '5s'
notify = false
witness = ["http://a:1", "http://b:2"]
origin = ["https://ops.example.jp"]
key = "hot-2.key"
log-level = "debug"
`
	json := `{"addr": "10.0.0.5:8443", "confirmations": 10, "witness-every": "5s", "notify": false,
  "witness": ["http://a:1", "http://b:2"], "origin": ["https://ops.example.jp"], "key": "hot-2.key", "log-level": "debug"}`
	want := configured{addr: "10.0.0.5:8443", n: 10, every: 5 * time.Second, on: false, arr: []string{"http://a:1", "http://b:2"},
		slice: []string{"https://ops.example.jp"}, needed: "hot-2.key", logLvl: "debug", ranWith: true}
	for file, text := range map[string]string{"core.toml": toml, "core.json": json} {
		got, err := runConfig(t, file, text)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v; want %+v", file, got, err, want)
		}
		// The command line overrides the file, a list included.
		got, err = runConfig(t, file, text, "--addr", "127.0.0.1:9", "--witness", "http://c:3", "--log-level", "warn")
		if err != nil || got.addr != "127.0.0.1:9" || !reflect.DeepEqual(got.arr, []string{"http://c:3"}) || got.logLvl != "warn" || got.n != 10 {
			t.Errorf("%s with flags: got %+v, %v", file, got, err)
		}
	}
}

// TestConfigFileRefused: a key that is not a flag, a value its flag
// refuses, a list for a single flag, TOML it does not read: an error
// naming the line, and the command does not run.
func TestConfigFileRefused(t *testing.T) {
	for _, tc := range []struct {
		file, text, want string
	}{
		{"a.toml", "key = \"k\"\nadress = \"x\"\n", `unknown key "adress"`},
		{"a.json", `{"key": "k", "adress": "x"}`, `unknown key "adress"`},
		{"a.toml", "key = \"k\"\nconfirmations = \"six\"\n", "confirmations"},
		{"a.json", `{"key": "k", "witness-every": 5}`, "witness-every"},
		{"a.toml", "key = [\"a\", \"b\"]\n", "takes one value"},
		{"a.toml", "[core]\nkey = \"k\"\n", "line 1: tables"},
		{"a.toml", "key = \"k\nx\"\n", "line 1"},
		{"a.toml", "key = \"k\" trailing\n", "unexpected"},
		{"a.toml", "key = 'k'\nkey = 'l'\n", "given twice"},
		{"a.json", `{"key": {"nested": 1}}`, "a string, a number"},
		{"a.json", `{"key": "k"} {}`, "after the object"},
		{"a.toml", "config = \"other.toml\"\nkey = \"k\"\n", `unknown key "config"`},
		{"a.toml", "addr = \"x\"\n", `required flag(s) "key" not set`},
	} {
		got, err := runConfig(t, tc.file, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) || got.ranWith {
			t.Errorf("%s %q: err %v, ran %v; want an error with %q", tc.file, tc.text, err, got.ranWith, tc.want)
		}
	}
	// A bad key anywhere leaves every flag as it was.
	got, err := runConfig(t, "a.toml", "addr = \"10.0.0.1:1\"\nnope = 1\n", "--key", "k")
	if err == nil || got.addr != "127.0.0.1:8080" {
		t.Errorf("a file with a bad key set addr to %q (%v)", got.addr, err)
	}
}

// TestDeployExamples: every file deploy/ shows is one its role reads:
// the configuration files set only flags of their commands, with values
// the flags take; the co-signer's policy, the rules, the markets and the
// assets parse as their commands parse them.
func TestDeployExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy")
	for file, cmd := range map[string]*cobra.Command{
		"core.toml": newCoreCmd(), "cosigner.toml": newCosignerCmd(), "signer.toml": newSignerCmd(), "watch.toml": newWatchCmd(),
	} {
		if err := loadConfig(cmd, filepath.Join(dir, file)); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "cosigner-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cosigner.ParsePolicy(b, &chaincfg.MainNetParams); err != nil {
		t.Errorf("cosigner-policy.json: %v", err)
	}
	r, err := withdraw.LoadRules(filepath.Join(dir, "withdrawal-rules.json"))
	if err == nil {
		err = r.Check()
	}
	if err != nil {
		t.Errorf("withdrawal-rules.json: %v", err)
	}
	specs, err := readAssetsFile(filepath.Join(dir, "assets.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if _, err := sp.asset(); err != nil {
			t.Errorf("assets.json: %v", err)
		}
	}
	mb, err := os.ReadFile(filepath.Join(dir, "markets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ls []trading.Listing
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ls); err != nil {
		t.Fatalf("markets.json: %v", err)
	}
	for _, l := range ls {
		if err := l.WithDefaults(0, true).Validate(); err != nil {
			t.Errorf("markets.json %s: %v", l.Code, err)
		}
	}
}
