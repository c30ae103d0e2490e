// Package itest runs kinko as an operator deploys it, for integration,
// attack and crash tests: every role its own OS process of the kinko
// binary (built once per test process), every host its own directory, on a
// real btcd regtest node. A test deploys the whole topology with Deploy,
// acts as customers through the core's HTTP API (Customer), as the chain
// through the node (Chain), and as the operator through the CLI and the
// roles' processes (Proc: start, SIGKILL, SIGTERM, restart).
//
// A deployment's directory holds one directory per host:
//
//	core/      the core's data directory (journal, snapshots, secrets/)
//	signer/    hot key #1, its passphrase, the signer token, tls/ (client)
//	cosigner/  hot key #2, its passphrase, policy.json, state/, the stream
//	           token, tls/ (server)
//	watcher/   the stream and watcher tokens, tls/ (the watcher's client
//	           certificate, to halt the co-signer)
//	cold/      the offline machines: the three cold keys, the hot wallet's
//	           backup key, the house wallets' keys, ceremonies/; never
//	           given to a process
//	logs/      one log per role, appended at every start
//	btcd/      the node
//
// Every role process is killed when the test ends, also when it fails
// (and by the kernel if the test process dies first, on Linux), and the
// roles' logs are printed when it failed.
package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/api"
	"kinko/internal/auth"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/nodetool"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/custody"
	"kinko/internal/demo"
	"kinko/internal/ledger"
	"kinko/internal/mtls"
	"kinko/internal/opclient"
	"kinko/internal/operators"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the kinko binary, built once per test process from the
// module that holds the working directory (`go build ./cmd/kinko`,
// GOTOOLCHAIN=local) into a temporary directory that Main removes.
func Binary() (string, error) {
	build.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		gomod := strings.TrimSpace(string(out))
		if err != nil || gomod == "" || gomod == os.DevNull {
			build.err = fmt.Errorf("itest: the kinko binary is built from kinko's module: run the tests inside the repository (go env GOMOD: %v)", err)
			return
		}
		if build.dir, err = os.MkdirTemp("", "kinko-itest-bin-*"); err != nil {
			build.err = err
			return
		}
		path := filepath.Join(build.dir, "kinko")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/kinko")
		cmd.Dir = filepath.Dir(gomod)
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		if b, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("itest: go build ./cmd/kinko: %v\n%s", err, b)
			return
		}
		build.path = path
	})
	return build.path, build.err
}

// Main runs a test package that uses the harness and removes the binary
// it built: func TestMain(m *testing.M) { os.Exit(itest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}

// The deployment's people and secrets. Test values: real ones are chosen
// by the people who hold them.
const (
	// OperatorName is the deployment's bootstrap admin.
	OperatorName = "aiko"
	// SecondAdmin approves what an admin asks; ApproverName what needs an
	// approver.
	SecondAdmin  = "ren"
	ApproverName = "kenji"
	// customerPassword is every customer's password.
	customerPassword = "kinko-itest-customer-password"
	// hostPassphrase protects the key files of every host (one file per
	// host).
	hostPassphrase = "kinko-itest-host-passphrase"
)

// Wallet ids of a deployment, as in the demo.
const (
	WalletColdCustomer uint32 = 1
	WalletHotCustomer  uint32 = 2
	WalletColdHouse    uint32 = 3
	WalletHotHouse     uint32 = 4
)

// BTC is the deployment's one asset, with the demo's id.
var BTC = ledger.Asset{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}

// Tolerance is the reconciliation difference the watcher accepts, in
// satoshi: the network fees ceremonies and batches pay from customer
// wallets until the house tops them up (docs/watch.md).
const Tolerance = demo.Tolerance

// Options configure a deployment; the zero value is a fast test topology.
type Options struct {
	// CoolDown is how long a new intent key or address waits, for the
	// core (whole seconds, rounded up) and the co-signer (by its clock);
	// default 1s.
	CoolDown time.Duration
	// Confirmations is what the watcher waits for before crediting a
	// deposit or confirming a batch; default 1.
	Confirmations int32
	// Rules are the core's withdrawal rules; nil: DefaultRules.
	Rules *withdraw.Rules
	// Policy is the co-signer's policy file; nil: DefaultPolicy. Its
	// wallets, if it pins none, are the deployment's four.
	Policy *cosigner.Policy
}

func (o *Options) fill() {
	if o.CoolDown <= 0 {
		o.CoolDown = time.Second
	}
	if o.Confirmations <= 0 {
		o.Confirmations = 1
	}
	if o.Rules == nil {
		r := DefaultRules(o.CoolDown)
		o.Rules = &r
	}
	if o.Policy == nil {
		p := DefaultPolicy(o.CoolDown)
		o.Policy = &p
	}
}

// DefaultRules are the core's withdrawal rules of a test deployment: the
// cool-down, a dust limit and limits well above what tests withdraw.
func DefaultRules(coolDown time.Duration) withdraw.Rules {
	return withdraw.Rules{
		CoolDownSeconds:  int64((coolDown + time.Second - 1) / time.Second),
		DustLimit:        map[string]withdraw.Amount{"BTC": withdraw.AmountOf(546)},
		PerWithdrawalMax: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(50_000_000)},
		PerCustomerDay:   map[string]withdraw.Amount{"BTC": withdraw.AmountOf(100_000_000)},
		PerAssetHour:     map[string]withdraw.Amount{"BTC": withdraw.AmountOf(200_000_000)},
		// Nothing these tests withdraw waits for two operators.
		ApprovalAbove: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(50_000_000)},
		// Deposits are final at the watcher's confirmations: these tests
		// are not about reorganisations (internal/watch's are).
		Finality: map[string][]withdraw.Tier{"BTC": {{Depth: 1}}},
	}
}

// DefaultPolicy is the co-signer's policy of a test deployment: the
// cool-down by its clock, 0.1 BTC an hour per customer, 0.2 BTC an hour
// leaving in all (fees included), fees up to 0.001 BTC a transaction and
// 0.01 BTC an hour, 100 transactions an hour; the day's ten times the
// hour's. Its wallets are filled in by the deployment.
func DefaultPolicy(coolDown time.Duration) cosigner.Policy {
	return cosigner.Policy{
		CoolDown: cosigner.Duration{Duration: coolDown},
		Limits: map[string]cosigner.Limits{"BTC": {
			PerCustomerHour: withdraw.AmountOf(10_000_000), PerCustomerDay: withdraw.AmountOf(100_000_000),
			PerAssetHour: withdraw.AmountOf(20_000_000), PerAssetDay: withdraw.AmountOf(200_000_000),
			FeeMax: withdraw.AmountOf(100_000), FeeHour: withdraw.AmountOf(1_000_000), FeeDay: withdraw.AmountOf(10_000_000),
			TxHour: 100, TxDay: 1000, YenPerCoin: 15_000_000, Decimals: 8}},
		AllAssets: cosigner.AllLimits{YenHour: 100_000_000, YenDay: 1_000_000_000, TxHour: 100, TxDay: 1000},
	}
}

// pinned is the deployment's four wallets as the co-signer's host pins
// them.
func (w Wallets) pinned() []cosigner.PinnedWallet {
	return []cosigner.PinnedWallet{
		{Name: "cold-customer", Kind: "cold-customer", Asset: "BTC", Descriptor: w.ColdCustomer},
		{Name: "hot-customer", Kind: "hot-customer", Asset: "BTC", Descriptor: w.HotCustomer},
		{Name: "cold-house", Kind: "cold-house", Asset: "BTC", Descriptor: w.ColdHouse},
		{Name: "hot-house", Kind: "hot-house", Asset: "BTC", Descriptor: w.HotHouse},
	}
}

// Key is a key file made by `kinko keys new` on its host.
type Key struct {
	File       string
	Passphrase string // the passphrase file
	// Account is the BIP48 account key for descriptors:
	// [fingerprint/48h/1h/0h/2h]tpub....
	Account string
}

// Wallets are the registered wallets' descriptors.
type Wallets struct {
	ColdCustomer, HotCustomer, ColdHouse, HotHouse string
}

// Deployment is kinko deployed on one machine as on many: a btcd regtest
// node, the core, the co-signer, the hot signer and the watcher each a
// process in its own host directory, and the offline keys in cold/.
type Deployment struct {
	// Root holds the hosts' directories.
	Root string
	// Team are the deployment's operators and their CLI keys (in
	// Root/operators).
	Team *operators.Team
	// CoreDir is the core's data directory; the others are hosts.
	CoreDir, SignerDir, CosignerDir, WatcherDir, ColdDir string
	// SecretsDir is the core's secrets directory (its keys and tokens),
	// outside its data directory.
	SecretsDir string
	// LogDir holds one log file per role.
	LogDir string
	// Bin is the kinko binary every process runs.
	Bin string
	// Node is the btcd regtest node; Chain the helpers on it.
	Node  *regtest.Node
	Chain *Chain
	// The roles' processes.
	Core, Cosigner, Signer, Watcher *Proc
	// CoreURL is the core's API; CosignerURL the co-signer's (mutual TLS);
	// WatcherMetrics the watcher's Prometheus address.
	CoreURL, CosignerURL, WatcherMetrics string
	// CoreCA, when the core serves HTTPS (TestDeploy), is the CA
	// certificate its clients check it against; coreHTTP is their client.
	CoreCA   string
	coreHTTP *http.Client
	// CosignerWitnessURL and WatcherWitnessURL serve the heads the
	// co-signer and the watcher sign of their mirrors; CosignerWitnessKey
	// and WatcherWitnessKey are their public keys as pinned on the core's
	// host (files in CoreDir).
	CosignerWitnessURL, WatcherWitnessURL string
	CosignerWitnessKey, WatcherWitnessKey string
	// Operator is the bootstrap admin, logged in.
	Operator *Operator
	// The key files: the cold customer wallet's three; the hot customer
	// wallet's hot #1 (signer), hot #2 (co-signer) and offline backup;
	// the house wallets'.
	ColdKeys, HotKeys, ColdHouseKeys, HotHouseKeys []Key
	// Wallets are the four registered wallets' descriptors.
	Wallets Wallets
	// Options are the deployment's, filled with the defaults.
	Options Options
}

// Deploy lays out and starts a deployment for t: it builds the binary
// (once), starts a btcd regtest node, makes the keys and certificates,
// prepares the core's data directory, then starts the core, the
// co-signer, the watcher and the hot signer and logs the operator in. The
// processes are killed when the test ends.
func Deploy(t testing.TB, o Options) *Deployment {
	t.Helper()
	o.fill()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	node := regtest.New(t, regtest.Options{Dir: filepath.Join(root, "btcd")})
	d := &Deployment{Root: root, Bin: bin, Node: node, Chain: NewChain(node), Options: o,
		CoreDir: filepath.Join(root, "core"), SecretsDir: filepath.Join(root, "core-secrets"), SignerDir: filepath.Join(root, "signer"), CosignerDir: filepath.Join(root, "cosigner"),
		WatcherDir: filepath.Join(root, "watcher"), ColdDir: filepath.Join(root, "cold"), LogDir: filepath.Join(root, "logs")}
	// Registered after the node and the directory: runs before both go.
	t.Cleanup(func() { d.shutdown(t) })
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := d.up(ctx); err != nil {
		t.Fatalf("itest: deploy: %v", err)
	}
	return d
}

// Procs returns the role processes in the order they start.
func (d *Deployment) Procs() []*Proc {
	var ps []*Proc
	for _, p := range []*Proc{d.Core, d.Cosigner, d.Watcher, d.Signer} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// shutdown kills every role, the last started first, and prints their
// logs if the test failed.
func (d *Deployment) shutdown(t testing.TB) {
	ps := d.Procs()
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].Kill()
	}
	if t.Failed() {
		for _, p := range ps {
			t.Logf("%s log (%s), end:\n%s", p.Name, p.Log, p.LogTail(6000))
		}
		if d.Node != nil {
			t.Logf("btcd log, end:\n%s", d.Node.LogTail())
		}
	}
}

// Check returns the error of a role that exited by itself, nil if every
// role runs or was ended deliberately.
func (d *Deployment) Check() error {
	var errs []error
	for _, p := range d.Procs() {
		if err := p.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// wait polls f until it reports done, fails, a role dies, or ctx ends.
func (d *Deployment) wait(ctx context.Context, what string, f func() (bool, error)) error {
	return poll(ctx, what, func() (bool, error) {
		if err := d.Check(); err != nil {
			return false, err
		}
		return f()
	})
}

// Kinko runs a one-shot kinko command in dir (a host directory) and
// returns its output; a failure carries the output.
func (d *Deployment) Kinko(ctx context.Context, dir string, args ...string) (string, error) {
	return runKinko(ctx, d.Bin, dir, args...)
}

// runKinko runs the kinko binary bin in dir and returns what it printed.
func runKinko(ctx context.Context, bin, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr(false)
	waited, err := nodetool.Start(cmd)
	if err == nil {
		err = <-waited
	}
	if err != nil {
		return out.String(), fmt.Errorf("itest: kinko %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// up does what Deploy says.
func (d *Deployment) up(ctx context.Context) error {
	for _, dir := range []string{d.CoreDir, d.SignerDir, d.CosignerDir, d.WatcherDir, d.ColdDir, d.LogDir,
		filepath.Join(d.CosignerDir, "state"), filepath.Join(d.ColdDir, "ceremonies")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if err := d.makeKeys(ctx); err != nil {
		return err
	}
	if err := d.makeCertificates(ctx); err != nil {
		return err
	}
	if err := d.makeWallets(ctx); err != nil {
		return err
	}
	corePort, err := freePort()
	if err != nil {
		return err
	}
	d.CoreURL = fmt.Sprintf("http://127.0.0.1:%d", corePort)
	if err := d.prepareCore(ctx); err != nil {
		return err
	}
	if err := d.handOutTokens(); err != nil {
		return err
	}
	if err := d.writeCosignerPolicy(); err != nil {
		return err
	}
	csPort, err := freePort()
	if err != nil {
		return err
	}
	metricsPort, err := freePort()
	if err != nil {
		return err
	}
	d.CosignerURL = fmt.Sprintf("https://127.0.0.1:%d", csPort)
	d.WatcherMetrics = fmt.Sprintf("127.0.0.1:%d", metricsPort)
	if err := d.pinWitnesses(ctx); err != nil {
		return err
	}
	logOf := func(role string) string { return filepath.Join(d.LogDir, role+".log") }
	d.Core = newProc("core", d.Bin, d.CoreDir, logOf("core"), regexp.MustCompile(`(?m)^kinko is running`), d.coreArgs)
	d.Cosigner = newProc("cosigner", d.Bin, d.CosignerDir, logOf("cosigner"), regexp.MustCompile(`(?m)^co-signer listening on `), d.cosignerArgs)
	d.Watcher = newProc("watch", d.Bin, d.WatcherDir, logOf("watch"), regexp.MustCompile(`(?m)^watching BTC `), d.watchArgs)
	d.Signer = newProc("signer", d.Bin, d.SignerDir, logOf("signer"), regexp.MustCompile(`(?m)^hot signer running`), d.signerArgs)
	if err := d.Core.Start(ctx); err != nil {
		return err
	}
	d.Operator = &Operator{Name: OperatorName, KeyFile: d.OperatorKey(OperatorName), api: newAPIClient(d.CoreURL),
		client: opclient.New(d.CoreURL, OperatorName, d.Team.Get(OperatorName).Key)}
	if err := d.Operator.Login(ctx); err != nil {
		return err
	}
	for _, p := range []*Proc{d.Cosigner, d.Watcher, d.Signer} {
		if err := p.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// pinWitnesses makes the co-signer's and the watcher's witness keys on
// their hosts (`kinko cosigner|watch witness-key`, as at their first
// start) and pins the public halves on the core's host, as operators do;
// each witness serves its heads on a port of its own.
func (d *Deployment) pinWitnesses(ctx context.Context) error {
	for _, w := range []struct {
		role, state string
		url, key    *string
	}{
		{"cosigner", filepath.Join(d.CosignerDir, "state"), &d.CosignerWitnessURL, &d.CosignerWitnessKey},
		{"watch", filepath.Join(d.WatcherDir, "state"), &d.WatcherWitnessURL, &d.WatcherWitnessKey},
	} {
		out, err := d.Kinko(ctx, d.Root, w.role, "witness-key", "--state", w.state)
		if err != nil {
			return err
		}
		*w.key = filepath.Join(d.CoreDir, "witness-"+w.role+".pub")
		if err := os.WriteFile(*w.key, []byte(out), 0o600); err != nil {
			return err
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		*w.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	return nil
}

// WitnessInterval is how often the deployment's core asks its witnesses,
// and the witnesses check the core's signed head.
const WitnessInterval = time.Second

// freePort returns a port free on 127.0.0.1 now. A role keeps its port
// across restarts, as a deployed one does.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may hand the same free port out again before the
		// process it was meant for listens on it: never twice here.
		if !portsGiven[p] {
			portsGiven[p] = true
			return p, nil
		}
	}
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// coreArgs is the core's command line.
func (d *Deployment) coreArgs() []string {
	return []string{"core", "--data", d.CoreDir, "--secrets", d.SecretsDir, "--addr", strings.TrimPrefix(d.CoreURL, "http://"), "--check-invariants",
		"--signup-per-minute", "600", "--login-per-minute", "600", "--stepup-per-minute", "600",
		"--witness", d.CosignerWitnessURL, "--witness-key", d.CosignerWitnessKey,
		"--witness", d.WatcherWitnessURL, "--witness-key", d.WatcherWitnessKey, "--witness-every", WitnessInterval.String()}
}

// cosignerArgs is the co-signer's command line.
func (d *Deployment) cosignerArgs() []string {
	k := d.HotKeys[1]
	return []string{"cosigner", "--key", k.File, "--passphrase-file", k.Passphrase, "--policy", d.policyFile(),
		"--state", filepath.Join(d.CosignerDir, "state"), "--core", d.CoreURL, "--stream-token-file", filepath.Join(d.CosignerDir, "stream.token"),
		"--listen", strings.TrimPrefix(d.CosignerURL, "https://"), "--tls", filepath.Join(d.CosignerDir, "tls"), "--net", "regtest",
		"--witness-listen", strings.TrimPrefix(d.CosignerWitnessURL, "http://"), "--head-every", WitnessInterval.String()}
}

// nodeArgs are the flags that reach the node's RPC.
func (d *Deployment) nodeArgs() []string {
	cfg := d.Node.Config()
	return []string{"--rpc", cfg.Host, "--rpcuser", cfg.User, "--rpcpass", cfg.Pass, "--notls", "--net", "regtest"}
}

// signerArgs is the hot signer's command line.
func (d *Deployment) signerArgs() []string {
	k := d.HotKeys[0]
	return append([]string{"signer", "--key", k.File, "--passphrase-file", k.Passphrase, "--core", d.CoreURL,
		"--signer-token-file", filepath.Join(d.SignerDir, "signer.token"), "--cosigner", d.CosignerURL, "--tls", filepath.Join(d.SignerDir, "tls"),
		"--asset", "BTC"}, d.nodeArgs()...)
}

// watchArgs is the watcher's command line.
func (d *Deployment) watchArgs() []string {
	return append([]string{"watch", "--core", d.CoreURL, "--stream-token-file", filepath.Join(d.WatcherDir, "stream.token"),
		"--watcher-token-file", filepath.Join(d.WatcherDir, "watcher.token"), "--cosigner", d.CosignerURL, "--tls", filepath.Join(d.WatcherDir, "tls"),
		"--asset", "BTC", "--confirmations", strconv.Itoa(int(d.Options.Confirmations)), "--start-height", strconv.Itoa(regtest.SegwitHeight),
		"--tolerance", strconv.Itoa(Tolerance), "--state", filepath.Join(d.WatcherDir, "state"), "--metrics", d.WatcherMetrics,
		"--witness-listen", strings.TrimPrefix(d.WatcherWitnessURL, "http://"), "--head-every", WitnessInterval.String()}, d.nodeArgs()...)
}

// writeCosignerPolicy writes the co-signer's policy file on its host from
// the deployment's options, checked as the co-signer will read it.
func (d *Deployment) writeCosignerPolicy() error {
	p := *d.Options.Policy
	if len(p.Wallets) == 0 {
		p.Wallets = d.Wallets.pinned()
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if _, err := cosigner.ParsePolicy(b, regtest.Net); err != nil {
		return fmt.Errorf("itest: the co-signer would refuse its policy: %w", err)
	}
	return os.WriteFile(d.policyFile(), append(b, '\n'), 0o600)
}

// policyFile is the co-signer's policy file.
func (d *Deployment) policyFile() string { return filepath.Join(d.CosignerDir, "policy.json") }

// accountLine is the account key `kinko keys new` prints.
var accountLine = regexp.MustCompile(`account key for descriptors:\s+(\[[0-9a-f]{8}/\S+\]\S+)`)

// newKey makes a key file on a host with `kinko keys new`, protected by
// the host's passphrase file.
func (d *Deployment) newKey(ctx context.Context, host, name string) (Key, error) {
	pass := filepath.Join(host, "passphrase")
	if _, err := os.Stat(pass); err != nil {
		if err := os.WriteFile(pass, []byte(hostPassphrase+"\n"), 0o600); err != nil {
			return Key{}, err
		}
	}
	k := Key{File: filepath.Join(host, name), Passphrase: pass}
	out, err := d.Kinko(ctx, host, "keys", "new", "--out", k.File, "--passphrase-file", pass, "--cheap-kdf", "--net", "regtest")
	if err != nil {
		return Key{}, err
	}
	m := accountLine.FindStringSubmatch(out)
	if m == nil {
		return Key{}, fmt.Errorf("itest: kinko keys new printed no account key:\n%s", out)
	}
	k.Account = m[1]
	return k, nil
}

// makeKeys makes every key on its host: hot #1 on the signer's, hot #2 on
// the co-signer's, the rest offline.
func (d *Deployment) makeKeys(ctx context.Context) error {
	type want struct {
		into *[]Key
		host string
		name string
	}
	var wants []want
	for i := 1; i <= 3; i++ {
		wants = append(wants, want{&d.ColdKeys, d.ColdDir, fmt.Sprintf("cold-%d.key", i)})
	}
	wants = append(wants, want{&d.HotKeys, d.SignerDir, "hot-1.key"}, want{&d.HotKeys, d.CosignerDir, "hot-2.key"}, want{&d.HotKeys, d.ColdDir, "backup.key"})
	for i := 1; i <= 3; i++ {
		wants = append(wants, want{&d.ColdHouseKeys, d.ColdDir, fmt.Sprintf("house-cold-%d.key", i)}, want{&d.HotHouseKeys, d.ColdDir, fmt.Sprintf("house-hot-%d.key", i)})
	}
	for _, w := range wants {
		k, err := d.newKey(ctx, w.host, w.name)
		if err != nil {
			return err
		}
		*w.into = append(*w.into, k)
	}
	return nil
}

// makeCertificates makes the CA and the certificates with `kinko tls
// init` on one machine and gives each host only its own: the co-signer
// its server certificate, the signer and the watcher their client
// certificates; then the scratch directory goes.
func (d *Deployment) makeCertificates(ctx context.Context) error {
	ca := filepath.Join(d.Root, "tls-init")
	if _, err := d.Kinko(ctx, d.Root, "tls", "init", "--dir", ca); err != nil {
		return err
	}
	defer os.RemoveAll(ca)
	for host, files := range map[string][]string{
		d.CosignerDir: {mtls.CAFile, mtls.ServerCertFile, mtls.ServerKeyFile},
		d.SignerDir:   {mtls.CAFile, mtls.ClientCertFile, mtls.ClientKeyFile},
		d.WatcherDir:  {mtls.CAFile, mtls.WatcherCertFile, mtls.WatcherKeyFile},
	} {
		for _, f := range files {
			if err := copyFile(filepath.Join(ca, f), filepath.Join(host, "tls", f)); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyFile copies src to dst (0600), making dst's directory.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}

// makeWallets computes the four wallets' descriptors from the account keys
// with `kinko descriptor`.
func (d *Deployment) makeWallets(ctx context.Context) error {
	for _, w := range []struct {
		keys []Key
		into *string
	}{{d.ColdKeys, &d.Wallets.ColdCustomer}, {d.HotKeys, &d.Wallets.HotCustomer}, {d.ColdHouseKeys, &d.Wallets.ColdHouse}, {d.HotHouseKeys, &d.Wallets.HotHouse}} {
		args := []string{"descriptor", "--net", "regtest", "--m", "2"}
		for _, k := range w.keys {
			args = append(args, k.Account)
		}
		out, err := d.Kinko(ctx, d.Root, args...)
		if err != nil {
			return err
		}
		line, _, _ := strings.Cut(out, "\n")
		if !strings.HasPrefix(line, "wsh(sortedmulti(2,") {
			return fmt.Errorf("itest: kinko descriptor printed %q", out)
		}
		*w.into = line
	}
	return nil
}

// api is a client of the core's API: over HTTPS checked against CoreCA
// when the core serves it.
func (d *Deployment) api() apiClient {
	if d.coreHTTP != nil {
		return apiClient{base: d.CoreURL, http: d.coreHTTP}
	}
	return newAPIClient(d.CoreURL)
}

// coreFlags are the flags by which a kinko command reaches the core.
func (d *Deployment) coreFlags() []string {
	if d.CoreCA != "" {
		return []string{"--core", d.CoreURL, "--core-ca", d.CoreCA}
	}
	return []string{"--core", d.CoreURL}
}

// OperatorKey is where an operator's CLI key lives on the test's hosts.
func (d *Deployment) OperatorKey(name string) string {
	return filepath.Join(d.Root, "operators", name+".key")
}

// prepareCore writes the core's opening state into its data directory
// with the library while no core runs, for speed (TestDeploy deploys from
// the documented commands alone: `kinko init`, `kinko wallet register`,
// `kinko requests approve`): the founding operators with their CLI keys
// (bootstrap, and each key enrolled with its code), the asset, the house
// and wallet accounts, the four wallets and the withdrawal rules (each
// asked by one admin, approved by another).
func (d *Deployment) prepareCore(ctx context.Context) error {
	c, done, err := d.openToPrepare(ctx)
	if err != nil {
		return err
	}
	defer done()
	wallets := []struct {
		id    uint32
		kind  custody.WalletKind
		owner ledger.OwnerID
		desc  string
	}{
		{WalletColdCustomer, custody.ColdCustomer, demo.OwnerColdCustomer, d.Wallets.ColdCustomer},
		{WalletHotCustomer, custody.HotCustomer, demo.OwnerHotCustomer, d.Wallets.HotCustomer},
		{WalletColdHouse, custody.ColdHouse, demo.OwnerColdHouse, d.Wallets.ColdHouse},
		{WalletHotHouse, custody.HotHouse, demo.OwnerHotHouse, d.Wallets.HotHouse},
	}
	accounts := []ledger.AccountKey{
		{Owner: ledger.OwnerHouse, Asset: BTC.ID, Kind: ledger.KindHouse},
		{Owner: ledger.OwnerEquity, Asset: BTC.ID, Kind: ledger.KindEquity},
	}
	cmds := []core.Command{core.CreateAssets{Assets: []ledger.Asset{BTC}}}
	for _, w := range wallets {
		accounts = append(accounts, ledger.AccountKey{Owner: w.owner, Asset: BTC.ID, Kind: ledger.KindWallet})
	}
	cmds = append(cmds, core.CreateAccounts{Keys: accounts})
	cmds = append(d.Team.Bootstrap(time.Now()), cmds...)
	for _, w := range wallets {
		cmds = append(cmds, d.Team.RegisterWallets(time.Now(), custody.Wallet{ID: w.id, Kind: w.kind, Asset: BTC.ID, Descriptor: w.desc, Owner: w.owner})...)
	}
	cmds = append(cmds, d.Team.Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: *d.Options.Rules}, OperatorName, SecondAdmin, people.RoleAdmin, "itest: the deployment's rules", time.Now())...)
	return d.submitSigned(ctx, c, cmds)
}

// submitSigned journals cmds in c in order, each signed by its operator
// of the team; the first refused one stops it.
func (d *Deployment) submitSigned(ctx context.Context, c *core.Core, cmds []core.Command) error {
	for _, cmd := range cmds {
		cmd, err := d.Team.Sign(cmd)
		if err != nil {
			return err
		}
		o, err := c.Submit(ctx, time.Now(), cmd)
		if err == nil {
			err = o.Err
		}
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			return fmt.Errorf("itest: prepare the core: %s: %w", cmd.Kind(), err)
		}
	}
	return nil
}

// openToPrepare opens the deployment's core with the library, has the
// API write the core's secrets (TOTP sealing key, tokens) in its secrets
// directory, and makes the team; done closes both.
func (d *Deployment) openToPrepare(ctx context.Context) (c *core.Core, done func(), err error) {
	c, err = core.Open(ctx, core.Config{Dir: d.CoreDir, SecretsDir: d.SecretsDir})
	if err != nil {
		return nil, nil, err
	}
	srv, err := api.New(api.Config{Core: c, DataDir: d.CoreDir, SecretsDir: d.SecretsDir, Argon2: auth.TestArgon2})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	done = func() { srv.Close(); c.Close() }
	if err := d.makeTeam(); err != nil {
		done()
		return nil, nil, err
	}
	return c, done, nil
}

// makeTeam makes the founding operators' CLI keys (in Root/operators)
// and the team that signs their commands.
func (d *Deployment) makeTeam() error {
	if err := os.MkdirAll(filepath.Join(d.Root, "operators"), 0o700); err != nil {
		return err
	}
	var ops []*operators.Operator
	for _, m := range []operators.Member{{Name: OperatorName, Roles: []people.Role{people.RoleAdmin}}, {Name: SecondAdmin, Roles: []people.Role{people.RoleAdmin}},
		{Name: ApproverName, Roles: []people.Role{people.RoleApprover, people.RoleOperator}}} {
		k, err := passkey.NewSoftKey(passkey.AlgEdDSA)
		if err != nil {
			return err
		}
		if err := passkey.SaveSoftKey(d.OperatorKey(m.Name), k); err != nil {
			return err
		}
		ops = append(ops, &operators.Operator{Name: m.Name, Roles: m.Roles, Key: k})
	}
	d.Team = operators.NewWithKeys(passkey.RP{ID: "localhost", Origins: []string{d.CoreURL}}, ops...)
	return nil
}

// handOutTokens copies the tokens the API wrote into the core's secrets
// directory to the hosts that need them, as an operator would.
func (d *Deployment) handOutTokens() error {
	secrets := d.SecretsDir
	for _, c := range []struct{ token, host string }{
		{"stream.token", d.CosignerDir}, {"signer.token", d.SignerDir}, {"stream.token", d.WatcherDir}, {"watcher.token", d.WatcherDir},
	} {
		if err := copyFile(filepath.Join(secrets, c.token), filepath.Join(c.host, c.token)); err != nil {
			return err
		}
	}
	return nil
}

// NewCustomer signs a customer up through the API, has the operator
// verify their KYC, and logs them in.
func (d *Deployment) NewCustomer(ctx context.Context, email string) (*Customer, error) {
	c, err := signUp(ctx, d.api(), email, "Itest Customer", customerPassword)
	if err != nil {
		return nil, err
	}
	if err := d.Operator.SetKYC(ctx, c.ID, people.KYCVerified, "documents checked"); err != nil {
		return nil, err
	}
	if err := c.Login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Fund has the customer deposit amount satoshi on chain: a new deposit
// address, paid by the node, mined to the watcher's confirmations, and
// credited by the watcher (as the customer sees it). It returns the
// deposit's output.
func (d *Deployment) Fund(ctx context.Context, c *Customer, amount int64) (wire.OutPoint, error) {
	addr, err := c.DepositAddress(ctx)
	if err != nil {
		return wire.OutPoint{}, err
	}
	op, err := d.Chain.Pay(ctx, addr, amount)
	if err != nil {
		return wire.OutPoint{}, err
	}
	if _, err := d.Chain.Mine(ctx, uint32(d.Options.Confirmations)); err != nil {
		return wire.OutPoint{}, err
	}
	err = d.wait(ctx, fmt.Sprintf("deposit %s credited", op), func() (bool, error) {
		dep, found, err := c.Deposit(ctx, op.String())
		if err != nil || !found {
			return false, err
		}
		if dep.State != "credited" {
			return false, fmt.Errorf("itest: deposit %s is %s", op, dep.State)
		}
		return true, nil
	})
	return op, err
}

// WaitCoolDown waits until the customer's last key or address is past the
// core's cool-down and the co-signer's (which starts when it reads the
// entry: one poll of the journal stream later).
func (d *Deployment) WaitCoolDown(ctx context.Context, c *Customer) error {
	wait := max(time.Duration(d.Options.Rules.CoolDownSeconds)*time.Second, d.Options.Policy.CoolDown.Duration) + 500*time.Millisecond
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(c.CoolingSince().Add(wait))):
		return nil
	}
}

// WithCoreStopped stops the core (SIGTERM), runs fn while nothing else
// writes its data directory, and starts the core again, as an operator
// does for the commands that open the data directory themselves.
func (d *Deployment) WithCoreStopped(ctx context.Context, fn func() error) error {
	if err := d.Core.Stop(); err != nil {
		return err
	}
	ferr := fn()
	if err := d.Core.Start(ctx); err != nil {
		return errors.Join(ferr, err)
	}
	return ferr
}

// refillLine is what `kinko ceremony tiers` prints for a refill.
var refillLine = regexp.MustCompile(`refill \S+ of (\d+) base units`)

// Refill fills the hot wallet from cold by the refill ceremony, as
// operators do: `kinko ceremony tiers` on the core's host (core stopped)
// journals the refill with its inputs reserved and writes the request,
// two cold keys sign it offline, the transaction is broadcast, mined, and
// the watcher journals it confirmed. It returns the transaction and the
// amount the hot wallet received.
func (d *Deployment) Refill(ctx context.Context, id string) (chainhash.Hash, uint64, error) {
	before, err := d.Operator.Reserves(ctx)
	if err != nil {
		return chainhash.Hash{}, 0, err
	}
	req := filepath.Join(d.ColdDir, "ceremonies", id+".json")
	var out string
	args := append(append([]string{"ceremony", "tiers"}, d.coreFlags()...), "--operator", OperatorName, "--key", d.OperatorKey(OperatorName), "--id", id, "--out", req)
	out, err = d.Kinko(ctx, d.Root, append(args, d.nodeArgs()...)...)
	if err != nil {
		return chainhash.Hash{}, 0, err
	}
	m := refillLine.FindStringSubmatch(out)
	if m == nil {
		return chainhash.Hash{}, 0, fmt.Errorf("itest: ceremony tiers prepared no refill:\n%s", out)
	}
	amount, _ := strconv.ParseUint(m[1], 10, 64)
	txid, err := d.coldCeremony(ctx, req, d.ColdKeys[:2])
	if err != nil {
		return chainhash.Hash{}, 0, err
	}
	if err := d.Chain.WaitMempool(ctx, txid); err != nil {
		return chainhash.Hash{}, 0, err
	}
	if _, err := d.Chain.Mine(ctx, uint32(d.Options.Confirmations)); err != nil {
		return chainhash.Hash{}, 0, err
	}
	was, _ := before.HotCustomerLedger.Uint64()
	err = d.wait(ctx, "refill "+id+" confirmed", func() (bool, error) {
		row, err := d.Operator.Reserves(ctx)
		if err != nil {
			return false, err
		}
		hot, _ := row.HotCustomerLedger.Uint64()
		return hot == was+amount, nil
	})
	return txid, amount, err
}

// coldRegistry returns the registry of the offline machine of key k,
// registering there, once, the wallet that holds k (as operators do when
// the machine is set up: the descriptor checked against the key, shown,
// confirmed).
func (d *Deployment) coldRegistry(ctx context.Context, k Key) (string, error) {
	registry := strings.TrimSuffix(k.File, filepath.Ext(k.File)) + ".registry.json"
	if _, err := os.Stat(registry); err == nil {
		return registry, nil
	}
	for _, w := range d.Wallets.pinned() {
		if !strings.Contains(w.Descriptor, strings.TrimPrefix(k.Account, "[")[:8]) {
			continue
		}
		if _, err := d.Kinko(ctx, d.ColdDir, "cold", "register", "--key", k.File, "--passphrase-file", k.Passphrase, "--registry", registry,
			"--name", w.Name, "--kind", w.Kind, "--descriptor", w.Descriptor, "--yes", "--net", "regtest"); err != nil {
			return "", err
		}
		return registry, nil
	}
	return "", fmt.Errorf("itest: no wallet holds key %s", k.File)
}

// broadcastLine is what `kinko cold broadcast` prints.
var broadcastLine = regexp.MustCompile(`broadcast ([0-9a-f]{64})`)

// coldCeremony is the offline side of a ceremony, every `kinko cold`
// command a deployment runs: each of keys signs the request's PSBT on its
// offline machine, the signatures are combined and the transaction
// finalized, then broadcast. The files stay beside the request. It
// returns the transaction's id.
func (d *Deployment) coldCeremony(ctx context.Context, request string, keys []Key) (chainhash.Hash, error) {
	base := strings.TrimSuffix(request, filepath.Ext(request))
	var signed []string
	for i, k := range keys {
		out := fmt.Sprintf("%s.signed-%d.psbt", base, i+1)
		registry, err := d.coldRegistry(ctx, k)
		if err != nil {
			return chainhash.Hash{}, err
		}
		if _, err := d.Kinko(ctx, d.ColdDir, "cold", "sign", "--key", k.File, "--passphrase-file", k.Passphrase, "--registry", registry,
			"--request", request, "--out", out, "--yes", "--net", "regtest"); err != nil {
			return chainhash.Hash{}, err
		}
		signed = append(signed, out)
	}
	combined, txFile := base+".psbt", base+".tx"
	if _, err := d.Kinko(ctx, d.ColdDir, append([]string{"cold", "combine", "--out", combined}, signed...)...); err != nil {
		return chainhash.Hash{}, err
	}
	if _, err := d.Kinko(ctx, d.ColdDir, "cold", "finalize", "--psbt", combined, "--out", txFile); err != nil {
		return chainhash.Hash{}, err
	}
	out, err := d.Kinko(ctx, d.ColdDir, append([]string{"cold", "broadcast", "--tx", txFile}, d.nodeArgs()...)...)
	if err != nil {
		return chainhash.Hash{}, err
	}
	m := broadcastLine.FindStringSubmatch(out)
	if m == nil {
		return chainhash.Hash{}, fmt.Errorf("itest: kinko cold broadcast printed %q", out)
	}
	h, err := chainhash.NewHashFromStr(m[1])
	if err != nil {
		return chainhash.Hash{}, err
	}
	return *h, nil
}

// Withdrawal statuses a withdrawal does not leave.
var finalStatus = map[string]bool{
	string(withdraw.StatusDone): true, string(withdraw.StatusRejected): true, string(withdraw.StatusFailed): true,
}

// WaitWithdrawal waits until the core shows withdrawal id with status
// (read as the operator: GET /v1/withdrawals) and returns it. A
// withdrawal that ends in another status is an error with its reason.
func (d *Deployment) WaitWithdrawal(ctx context.Context, id string, status withdraw.Status) (api.WithdrawalView, error) {
	var got api.WithdrawalView
	err := d.wait(ctx, fmt.Sprintf("withdrawal %s %s", id, status), func() (bool, error) {
		ws, err := d.Operator.Withdrawals(ctx)
		if err != nil {
			return false, err
		}
		for _, w := range ws {
			if w.ID != id {
				continue
			}
			got = w
			if w.Status == string(status) {
				return true, nil
			}
			if finalStatus[w.Status] {
				return false, fmt.Errorf("itest: withdrawal %s is %s (%s); want %s", id, w.Status, w.Reason, status)
			}
		}
		return false, nil
	})
	return got, err
}

// CosignerStatus asks the co-signer's admin socket on its host.
func (d *Deployment) CosignerStatus() (cosigner.Status, error) {
	var st cosigner.Status
	err := cosigner.AdminDo(filepath.Join(d.CosignerDir, "state"), "GET", "/status", nil, &st)
	return st, err
}

// CoreHead returns the core's journal head (GET /v1/journal/head).
func (d *Deployment) CoreHead(ctx context.Context) (uint64, error) {
	var h struct {
		Seq uint64 `json:"seq"`
	}
	err := d.api().do(ctx, "GET", "/v1/journal/head", "", nil, http.StatusOK, &h)
	return h.Seq, err
}

// WatcherSeq returns the newest journal entry the watcher verified, from
// its metrics.
func (d *Deployment) WatcherSeq(ctx context.Context) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+d.WatcherMetrics+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^kinko_journal_seq (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("itest: the watcher's metrics have no kinko_journal_seq")
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return uint64(v), err
}

// WaitFollowersCaughtUp waits until the co-signer and the watcher have
// verified the core's journal up to its head as it is now.
func (d *Deployment) WaitFollowersCaughtUp(ctx context.Context) error {
	if err := d.WaitCosignerCaughtUp(ctx); err != nil {
		return err
	}
	head, err := d.CoreHead(ctx)
	if err != nil {
		return err
	}
	return d.wait(ctx, fmt.Sprintf("the watcher at entry %d", head), func() (bool, error) {
		seq, err := d.WatcherSeq(ctx)
		return err == nil && seq >= head, nil
	})
}

// WaitCosignerCaughtUp waits until the co-signer has verified the core's
// journal up to its head as it is now.
func (d *Deployment) WaitCosignerCaughtUp(ctx context.Context) error {
	head, err := d.CoreHead(ctx)
	if err != nil {
		return err
	}
	return d.wait(ctx, fmt.Sprintf("the co-signer at entry %d", head), func() (bool, error) {
		st, err := d.CosignerStatus()
		return err == nil && st.Seq >= head, nil
	})
}
