package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"kinko/internal/api"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/cosigner"
	"kinko/internal/demo"
	"kinko/internal/mtls"
	"kinko/internal/opclient"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
)

// The founders of a deployment from the documented commands: three
// admins (docs/deploy.md keeps three, so that an admin's own credential
// can be replaced).
var docFounders = []string{OperatorName, SecondAdmin, "yui"}

// docTiming are the deployment's short test intervals: the watcher
// journals a checkpoint every second with no block, and the core is not
// ready when none came for four.
const (
	docCheckpointEvery = time.Second
	docReadyAge        = 4 * time.Second
)

var (
	founderCode  = regexp.MustCompile(`(?m)^\s+(\w+)\s+code ([0-9a-f]{32})$`)
	requestFiled = regexp.MustCompile(`requested \(([a-z0-9-]+)\)`)
	pemPublicKey = regexp.MustCompile(`(?s)-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----\n`)
)

// deployFromDocs brings up the whole topology as docs/deploy.md tells an
// operator to, each step a kinko command on its host and each file one
// the guide shows, and no library call into any host's directory: the
// keys on their machines (kinko keys new), the certificates (kinko tls
// init, each host given its own), the witnesses' keys pinned on the
// core's host, kinko init, the core started with its configuration
// file and TLS, each founder's key enrolled with their code, the four
// wallets registered from their xpubs and approved by a second admin,
// the withdrawal rules and the first market through requests, the
// co-signer's policy written from the registered descriptors, the tokens
// handed out, and the co-signer, the watcher and the hot signer started
// each with its configuration file, reaching the core over HTTPS.
// docHosts is what deployFromDocs keeps of the core's host: its
// directory, its configuration file, the backup taken after kinko init,
// and the flags added to the core's command line at its next start.
type docHosts struct {
	coreHost, coreConfig, backup string
	coreFlags                    []string
}

func deployFromDocs(t *testing.T, ctx context.Context) (*Deployment, *docHosts) {
	t.Helper()
	o := Options{}
	o.fill()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	node := regtest.New(t, regtest.Options{Dir: filepath.Join(root, "btcd")})
	d := &Deployment{Root: root, Bin: bin, Node: node, Chain: NewChain(node), Options: o,
		CoreDir: filepath.Join(root, "core", "data"), SecretsDir: filepath.Join(root, "core", "secrets"), SignerDir: filepath.Join(root, "signer"), CosignerDir: filepath.Join(root, "cosigner"),
		WatcherDir: filepath.Join(root, "watcher"), ColdDir: filepath.Join(root, "cold"), LogDir: filepath.Join(root, "logs")}
	t.Cleanup(func() { d.shutdown(t) })
	coreHost, opsDir := filepath.Join(root, "core"), filepath.Join(root, "operators")
	for _, dir := range []string{coreHost, d.SignerDir, d.CosignerDir, d.WatcherDir, d.ColdDir, d.LogDir, opsDir, filepath.Join(d.ColdDir, "ceremonies")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	kinko := func(dir string, args ...string) string {
		t.Helper()
		out, err := d.Kinko(ctx, dir, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ports := map[string]int{}
	for _, p := range []string{"core", "cosigner", "cosigner-witness", "watcher-witness", "watcher-metrics"} {
		if ports[p], err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	// The core is reached by the name its certificate carries.
	d.CoreURL = fmt.Sprintf("https://localhost:%d", ports["core"])
	d.CosignerURL = fmt.Sprintf("https://localhost:%d", ports["cosigner"])
	d.WatcherMetrics = fmt.Sprintf("127.0.0.1:%d", ports["watcher-metrics"])
	d.CosignerWitnessURL = fmt.Sprintf("http://127.0.0.1:%d", ports["cosigner-witness"])
	d.WatcherWitnessURL = fmt.Sprintf("http://127.0.0.1:%d", ports["watcher-witness"])

	// 1. Keys, each on its machine; the descriptors on the cold machines.
	if err := d.makeKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.makeWallets(ctx); err != nil {
		t.Fatal(err)
	}
	// 2. Certificates: made once, each host given only its files.
	ca := filepath.Join(root, "tls-init")
	kinko(root, "tls", "init", "--dir", ca, "--core-host", "localhost", "--cosigner-host", "localhost")
	for host, files := range map[string][]string{
		filepath.Join(coreHost, "tls"):      {mtls.CAFile, mtls.CoreCertFile, mtls.CoreKeyFile},
		filepath.Join(d.CosignerDir, "tls"): {mtls.CAFile, mtls.ServerCertFile, mtls.ServerKeyFile},
		filepath.Join(d.SignerDir, "tls"):   {mtls.CAFile, mtls.ClientCertFile, mtls.ClientKeyFile},
		filepath.Join(d.WatcherDir, "tls"):  {mtls.CAFile, mtls.WatcherCertFile, mtls.WatcherKeyFile},
		opsDir:                              {mtls.CAFile},
	} {
		for _, f := range files {
			if err := copyFile(filepath.Join(ca, f), filepath.Join(host, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.RemoveAll(ca)
	d.CoreCA = filepath.Join(opsDir, mtls.CAFile)
	if d.coreHTTP, err = httpsClient(d.CoreCA, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// 3. The witnesses' keys, made on their hosts, pinned on the core's.
	d.CosignerWitnessKey = filepath.Join(coreHost, "witness-cosigner.pub")
	d.WatcherWitnessKey = filepath.Join(coreHost, "witness-watcher.pub")
	write(d.CosignerWitnessKey, kinko(d.CosignerDir, "cosigner", "witness-key", "--state", filepath.Join(d.CosignerDir, "state")))
	write(d.WatcherWitnessKey, kinko(d.WatcherDir, "watch", "witness-key", "--state", filepath.Join(d.WatcherDir, "state")))

	// 4. kinko init on the core's host.
	args := []string{"init", "--data", d.CoreDir, "--secrets", d.SecretsDir, "--rp-id", "localhost", "--origin", d.CoreURL, "--asset", "1:JPY:0:fiat", "--asset", "2:BTC:8:chain"}
	for _, n := range docFounders {
		args = append(args, "--name", n)
	}
	out := kinko(coreHost, args...)
	codes := map[string]string{}
	for _, m := range founderCode.FindAllStringSubmatch(out, -1) {
		codes[m[1]] = m[2]
	}
	if len(codes) != len(docFounders) {
		t.Fatalf("kinko init printed codes for %v:\n%s", codes, out)
	}
	// The backup of the core's host, taken once after init: its secrets
	// directory (the journal's head key, the TOTP sealing key, the
	// tokens) and, apart, the data directory as it is then.
	hosts := &docHosts{coreHost: coreHost, backup: filepath.Join(root, "backup", "core")}
	if err := os.CopyFS(filepath.Join(hosts.backup, "data"), os.DirFS(d.CoreDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(hosts.backup, "secrets"), os.DirFS(d.SecretsDir)); err != nil {
		t.Fatal(err)
	}

	// 5. The core, from its configuration file (TOML), serving HTTPS.
	coreConfig := filepath.Join(coreHost, "core.toml")
	write(coreConfig, fmt.Sprintf(`# kinko core (deploy/core.toml)
data = %q
secrets = %q
addr = "127.0.0.1:%d"
tls-cert = %q
tls-key = %q
witness = [%q, %q]
witness-key = [%q, %q]
witness-every = %q
ready-watcher-age = %q
ready-blocks = 6
backup-dir = %q
backup-every = "1s"
check-invariants = true
log-level = "info"
`, d.CoreDir, d.SecretsDir, ports["core"], filepath.Join(coreHost, "tls", mtls.CoreCertFile), filepath.Join(coreHost, "tls", mtls.CoreKeyFile),
		d.CosignerWitnessURL, d.WatcherWitnessURL, d.CosignerWitnessKey, d.WatcherWitnessKey, WitnessInterval.String(), docReadyAge.String(), filepath.Join(hosts.backup, "store")))
	logOf := func(role string) string { return filepath.Join(d.LogDir, role+".log") }
	hosts.coreConfig = coreConfig
	d.Core = newProc("core", d.Bin, coreHost, logOf("core"), regexp.MustCompile(`(?m)^kinko is running`), func() []string {
		return append([]string{"core", "--config", coreConfig}, hosts.coreFlags...)
	})
	if err := d.Core.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// 6. Each founder enrols a CLI key with their code, on their PC.
	lifters := []cosigner.Lifter{}
	for _, n := range docFounders {
		out := kinko(opsDir, "operators", "key", "--out", d.OperatorKey(n))
		pub := pemPublicKey.FindString(out)
		if pub == "" {
			t.Fatalf("kinko operators key printed no public key:\n%s", out)
		}
		lifters = append(lifters, cosigner.Lifter{Name: n, Role: people.RoleAdmin, PublicKey: pub})
		if out := kinko(opsDir, "operators", "enrol", "--core", d.CoreURL, "--core-ca", d.CoreCA, "--operator", n, "--key", d.OperatorKey(n), "--code", codes[n]); !strings.Contains(out, "active") {
			t.Fatalf("enrol %s:\n%s", n, out)
		}
	}
	as := func(op string, args ...string) string {
		t.Helper()
		return kinko(opsDir, append(args, "--core", d.CoreURL, "--core-ca", d.CoreCA, "--operator", op, "--key", d.OperatorKey(op))...)
	}
	// approve has the second admin approve what the first filed.
	approve := func(out string) {
		t.Helper()
		m := requestFiled.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no request filed:\n%s", out)
		}
		as(SecondAdmin, "requests", "approve", "--id", m[1], "--net", "regtest", "--reason", "checked against what the key holders read offline")
	}

	// 7. The four wallets from their xpubs, each asked by aiko and
	// approved by ren; ids 1 to 4 in this order.
	for _, w := range []struct {
		kind, name string
		keys       []Key
	}{
		{"cold-customer", "cold-customer", d.ColdKeys}, {"hot-customer", "hot-customer", d.HotKeys},
		{"cold-house", "cold-house", d.ColdHouseKeys}, {"hot-house", "hot-house", d.HotHouseKeys},
	} {
		args := []string{"wallet", "register", "--kind", w.kind, "--asset", "BTC", "--name", w.name, "--m", "2", "--net", "regtest", "--reason", "the " + w.name + " wallet"}
		for _, k := range w.keys {
			args = append(args, "--xpub", k.Account)
		}
		approve(as(OperatorName, args...))
	}
	// The registered descriptors are the ones the cold machines computed.
	listed := as(OperatorName, "wallet", "list")
	for _, w := range d.Wallets.pinned() {
		if !strings.Contains(listed, w.Descriptor) {
			t.Fatalf("kinko wallet list lacks %s %s:\n%s", w.Kind, w.Descriptor, listed)
		}
	}

	// 8. The withdrawal rules and the first market, through requests.
	rules, _ := json.MarshalIndent(o.Rules, "", "  ")
	write(filepath.Join(opsDir, "withdrawal-rules.json"), string(rules))
	approve(as(OperatorName, "rules", "set", "--file", filepath.Join(opsDir, "withdrawal-rules.json"), "--reason", "the opening rules"))
	markets, _ := json.MarshalIndent([]trading.Listing{demo.Markets[0]}, "", "  ")
	write(filepath.Join(opsDir, "markets.json"), string(markets))
	approve(as(OperatorName, "market", "add", "--file", filepath.Join(opsDir, "markets.json"), "--reason", "the first market"))

	// 9. The co-signer's policy, written on its host from the registered
	// descriptors, with its limits and its lifters.
	pol := *o.Policy
	pol.Wallets = d.Wallets.pinned()
	pol.Lifters, pol.LiftRP = lifters, &passkey.RP{ID: "localhost", Origins: []string{d.CoreURL}}
	b, _ := json.MarshalIndent(pol, "", "  ")
	write(d.policyFile(), string(b)+"\n")

	// 10. The tokens, handed out.
	if err := d.handOutTokens(); err != nil {
		t.Fatal(err)
	}

	// 11. The co-signer (TOML), the watcher (TOML) and the hot signer
	// (JSON), each from its file, reaching the core over HTTPS.
	nodeCfg := node.Config()
	hot2 := d.HotKeys[1]
	csConfig := filepath.Join(d.CosignerDir, "cosigner.toml")
	write(csConfig, fmt.Sprintf(`key = %q
passphrase-file = %q
policy = %q
state = %q
core = %q
core-ca = %q
stream-token-file = %q
listen = "127.0.0.1:%d"
tls = %q
net = "regtest"
witness-listen = "127.0.0.1:%d"
head-every = %q
`, hot2.File, hot2.Passphrase, d.policyFile(), filepath.Join(d.CosignerDir, "state"), d.CoreURL, filepath.Join(d.CosignerDir, "tls", mtls.CAFile),
		filepath.Join(d.CosignerDir, "stream.token"), ports["cosigner"], filepath.Join(d.CosignerDir, "tls"), ports["cosigner-witness"], WitnessInterval.String()))
	wConfig := filepath.Join(d.WatcherDir, "watch.toml")
	write(wConfig, fmt.Sprintf(`core = %q
core-ca = %q
stream-token-file = %q
watcher-token-file = %q
cosigner = [%q]
tls = %q
asset = "BTC"
confirmations = %d
start-height = %d
tolerance = %d
state = %q
metrics = %q
witness-listen = "127.0.0.1:%d"
head-every = %q
checkpoint-every = %q
rpc = %q
rpcuser = %q
rpcpass = %q
notls = true
net = "regtest"
`, d.CoreURL, filepath.Join(d.WatcherDir, "tls", mtls.CAFile), filepath.Join(d.WatcherDir, "stream.token"), filepath.Join(d.WatcherDir, "watcher.token"),
		d.CosignerURL, filepath.Join(d.WatcherDir, "tls"), o.Confirmations, regtest.SegwitHeight, Tolerance, filepath.Join(d.WatcherDir, "state"), d.WatcherMetrics,
		ports["watcher-witness"], WitnessInterval.String(), docCheckpointEvery.String(), nodeCfg.Host, nodeCfg.User, nodeCfg.Pass))
	hot1 := d.HotKeys[0]
	sConfig := filepath.Join(d.SignerDir, "signer.json")
	sj, _ := json.MarshalIndent(map[string]any{
		"key": hot1.File, "passphrase-file": hot1.Passphrase, "core": d.CoreURL, "core-ca": filepath.Join(d.SignerDir, "tls", mtls.CAFile),
		"signer-token-file": filepath.Join(d.SignerDir, "signer.token"), "cosigner": d.CosignerURL, "tls": filepath.Join(d.SignerDir, "tls"), "asset": "BTC",
		"rpc": nodeCfg.Host, "rpcuser": nodeCfg.User, "rpcpass": nodeCfg.Pass, "notls": true, "net": "regtest",
	}, "", "  ")
	write(sConfig, string(sj))
	d.Cosigner = newProc("cosigner", d.Bin, d.CosignerDir, logOf("cosigner"), regexp.MustCompile(`(?m)^co-signer listening on `), func() []string { return []string{"cosigner", "--config", csConfig} })
	d.Watcher = newProc("watch", d.Bin, d.WatcherDir, logOf("watch"), regexp.MustCompile(`(?m)^watching BTC `), func() []string { return []string{"watch", "--config", wConfig} })
	d.Signer = newProc("signer", d.Bin, d.SignerDir, logOf("signer"), regexp.MustCompile(`(?m)^hot signer running`), func() []string { return []string{"signer", "--config", sConfig} })
	for _, p := range []*Proc{d.Cosigner, d.Watcher, d.Signer} {
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	k, err := passkey.LoadSoftKey(d.OperatorKey(OperatorName))
	if err != nil {
		t.Fatal(err)
	}
	cl := opclient.New(d.CoreURL, OperatorName, k)
	cl.HTTP = d.coreHTTP
	d.Operator = &Operator{Name: OperatorName, KeyFile: d.OperatorKey(OperatorName), api: d.api(), client: cl}
	if err := d.Operator.Login(ctx); err != nil {
		t.Fatal(err)
	}
	return d, hosts
}

// readyz reads the core's readiness: its status code and answer.
func (d *Deployment) readyz(ctx context.Context) (int, api.ReadyView, error) {
	var v api.ReadyView
	req, err := http.NewRequestWithContext(ctx, "GET", d.CoreURL+"/readyz", nil)
	if err != nil {
		return 0, v, err
	}
	res, err := d.coreHTTP.Do(req)
	if err != nil {
		return 0, v, err
	}
	defer res.Body.Close()
	json.NewDecoder(io.LimitReader(res.Body, maxAnswer)).Decode(&v)
	return res.StatusCode, v, nil
}

// waitReady waits until the core's readiness is want (200 or 503), and
// returns its last answer.
func (d *Deployment) waitReady(ctx context.Context, want int, reason string) (api.ReadyView, error) {
	var last api.ReadyView
	err := d.wait(ctx, fmt.Sprintf("/readyz %d %q", want, reason), func() (bool, error) {
		code, v, err := d.readyz(ctx)
		if err != nil {
			return false, err
		}
		last = v
		return code == want && strings.Contains(strings.Join(v.Reasons, "; "), reason), nil
	})
	return last, err
}

// TestDeployFromTheDocs deploys every role on its own host from the
// documented commands alone (deployFromDocs), then runs a deposit, the
// refill ceremony and a withdrawal through it. The core is ready while
// the watcher journals its checkpoints, and not ready once the watcher
// has been stopped long enough, then ready again when it is back. The
// core's disk is lost: restored from the backup taken after init, it is
// refused by its witnesses; restored as the guide says (the secrets from
// the backup, the journal from a witness's mirror) it serves at the head
// it had and a second withdrawal goes through. The core's log holds its
// listen line, an access line of the withdrawal (route, status, the
// customer as principal) and audit lines of the wallets' approvals and of
// the withdrawal, and no log holds a token. Every role stops on SIGTERM
// and says so.
func TestDeployFromTheDocs(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	d, hosts := deployFromDocs(t, ctx)
	if _, err := d.waitReady(ctx, http.StatusOK, ""); err != nil {
		t.Fatal(err)
	}

	c, err := d.NewCustomer(ctx, "hanako@example.jp")
	if err != nil {
		t.Fatal(err)
	}
	const deposit = 5_0000_0000
	if _, err := d.Fund(ctx, c, deposit); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Available(ctx); err != nil || got != deposit {
		t.Fatalf("available after the deposit = %d, %v; want %d", got, err, deposit)
	}
	payA := payee(t)
	if err := c.RegisterKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Whitelist(ctx, payA); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Refill(ctx, "refill-1"); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitCoolDown(ctx, c); err != nil {
		t.Fatal(err)
	}
	const amount = 1_500_000
	withdrawAndConfirm(ctx, t, d, c, "w-1", payA, amount)
	if got, err := c.Available(ctx); err != nil || got != deposit-amount {
		t.Fatalf("available after the withdrawal = %d, %v; want %d", got, err, deposit-amount)
	}
	st, err := d.Operator.Status(ctx)
	if err != nil || len(st.Halts) != 0 {
		t.Fatalf("status after the withdrawal: %+v, %v", st, err)
	}

	// The metrics say what the core holds and serves.
	req, _ := http.NewRequestWithContext(ctx, "GET", d.CoreURL+"/metrics", nil)
	res, err := d.coreHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`kinko_segregated{asset="BTC"}`, `kinko_customer_liabilities_base_units{asset="BTC"}`,
		`kinko_http_requests_total{method="POST",route="/v1/me/withdrawals",status="201"} 1`,
		"kinko_http_request_duration_seconds_bucket", "go_goroutines", `kinko_watcher_checkpoint_height{asset="BTC"}`, "kinko_ready 1", "kinko_incidents_open 0",
		`kinko_withdrawals{status="done"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the core's metrics lack %q", want)
		}
	}

	// The watcher stops: once its last checkpoint is older than the
	// core's bound, the core is not ready, and says why; back, it is.
	if err := d.Watcher.Stop(); err != nil {
		t.Fatal(err)
	}
	v, err := d.waitReady(ctx, http.StatusServiceUnavailable, "watcher: no BTC checkpoint journaled")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("with the watcher stopped, /readyz: %s %v", v.Status, v.Reasons)
	if err := d.Watcher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.waitReady(ctx, http.StatusOK, ""); err != nil {
		t.Fatal(err)
	}

	// stop ends a role with SIGTERM, as systemd does, and finds its stop
	// line.
	stop := func(p *Proc, line string) {
		t.Helper()
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		tail := p.LogTail(4000)
		i := strings.LastIndex(tail, line)
		if i < 0 {
			t.Fatalf("%s said nothing on SIGTERM:\n%s", p.Name, tail)
		}
		t.Logf("%s", strings.TrimSpace(strings.SplitN(tail[i:], "\n", 2)[0]))
	}

	// The core's disk is lost. Restored from the backup taken after init,
	// its journal is older than what the witnesses signed: that core
	// refuses to serve (it runs here on another port, so the followers
	// never see it).
	if err := d.WaitFollowersCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	head, err := d.CoreHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop(d.Signer, "kinko signer stopped in ")
	// The API's store is copied every second to the backup (another
	// disk): the disk goes once a copy taken after the withdrawal is
	// there, and with it the running core.
	mark := len(d.Core.LogTail(1 << 30))
	if err := waitFor(ctx, "a backup of the API's store", func() bool {
		return strings.Contains(d.Core.LogTail(1 << 30)[mark:], "msg=\"store backed up\"")
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Core.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{d.CoreDir, d.SecretsDir} {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	old := filepath.Join(hosts.coreHost, "restored-old")
	if err := os.CopyFS(old, os.DirFS(filepath.Join(hosts.backup, "data"))); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(old+".secrets", os.DirFS(filepath.Join(hosts.backup, "secrets"))); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	oldURL := fmt.Sprintf("https://localhost:%d", port)
	// Its own backup directory: its store must not replace the last
	// good copy.
	hosts.coreFlags = []string{"--data", old, "--secrets", old + ".secrets", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--backup-dir", old + ".store"}
	mark = len(d.Core.LogTail(1 << 30))
	if err := d.Core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if said := d.Core.LogTail(1 << 30)[mark:]; !strings.Contains(said, "REFUSING to serve") {
		t.Fatalf("a core restored from the old backup serves:\n%s", said)
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", oldURL+"/readyz", nil)
	if res, err := d.coreHTTP.Do(req); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz of the old core = %v, %v; want 503", res, err)
	} else {
		res.Body.Close()
	}
	stop(d.Core, "kinko stopped in ")

	// Restored as docs/deploy.md says: the secrets from the backup, the
	// API's store from its last copy, the journal from a witness's mirror
	// (the watcher's, stopped while it is copied), checked against both
	// witnesses; the core then serves on its own address, at the head it
	// had, and the next withdrawal goes through every role.
	restored := filepath.Join(hosts.coreHost, "restored")
	if err := os.CopyFS(d.SecretsDir, os.DirFS(filepath.Join(hosts.backup, "secrets"))); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(restored, "api"), os.DirFS(filepath.Join(hosts.backup, "store", "api"))); err != nil {
		t.Fatal(err)
	}
	stop(d.Watcher, "kinko watch stopped in ")
	if err := os.CopyFS(filepath.Join(restored, "journal"), os.DirFS(filepath.Join(d.WatcherDir, "state", "journal"))); err != nil {
		t.Fatal(err)
	}
	if err := d.Watcher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]string{{d.CosignerWitnessURL, d.CosignerWitnessKey}, {d.WatcherWitnessURL, d.WatcherWitnessKey}} {
		if out, err := d.Kinko(ctx, hosts.coreHost, "journal", "verify", "--data", restored, "--witness", w[0], "--witness-key", w[1]); err != nil {
			t.Fatalf("the restored journal against %s: %v\n%s", w[0], err, out)
		}
	}
	hosts.coreFlags = []string{"--data", restored}
	d.CoreDir = restored
	mark = len(d.Core.LogTail(1 << 30))
	if err := d.Core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if said := d.Core.LogTail(1 << 30)[mark:]; strings.Contains(said, "REFUSING") {
		t.Fatalf("the restored core is refused:\n%s", said)
	}
	if got, err := d.CoreHead(ctx); err != nil || got < head {
		t.Fatalf("the restored core's head = %d, %v; want at least %d", got, err, head)
	}
	if _, err := d.waitReady(ctx, http.StatusOK, ""); err != nil {
		t.Fatal(err)
	}
	// The sessions are in the journal: the operator and the customer are
	// still signed in.
	if err := d.Signer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const again = 700_000
	w, err := c.Withdraw(ctx, "w-2", payA, again)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitWithdrawal(ctx, w.ID, withdraw.StatusBroadcast); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Chain.Mine(ctx, uint32(d.Options.Confirmations)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitWithdrawal(ctx, w.ID, withdraw.StatusDone); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Chain.Balance(ctx, payA); err != nil || got != amount+again {
		t.Fatalf("the payee holds %d, %v after the second withdrawal; want %d", got, err, amount+again)
	}
	if got, err := c.Available(ctx); err != nil || got != deposit-amount-again {
		t.Fatalf("available after the withdrawal on the restored core = %d, %v; want %d", got, err, deposit-amount-again)
	}

	// Every role stops on SIGTERM, the last started first, and says so.
	stop(d.Signer, "kinko signer stopped in ")
	stop(d.Watcher, "kinko watch stopped in ")
	stop(d.Cosigner, "kinko cosigner stopped in ")
	stop(d.Core, "kinko stopped in ")

	// The logs: the core's listen line, the withdrawal's access and audit
	// lines, the wallets' approvals by ren; no token anywhere.
	coreLog, err := os.ReadFile(d.Core.Log)
	if err != nil {
		t.Fatal(err)
	}
	cid := strconv.FormatUint(uint64(c.ID), 10)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`msg=listening listener=api addr=127\.0\.0\.1:\d+ scheme=https loopback=true`),
		regexp.MustCompile(`msg=access sub=access method=POST path=/v1/me/withdrawals route=/v1/me/withdrawals status=201 duration=\S+ principal="customer ` + cid + `"`),
		regexp.MustCompile(`msg=audit sub=audit seq=\d+ kind=request_withdrawal actor="customer ` + cid + `" outcome=ok`),
		regexp.MustCompile(`msg=audit sub=audit seq=\d+ kind=decide_request actor=ren outcome=ok`),
		regexp.MustCompile(`msg=audit sub=audit seq=\d+ kind=watch_checkpoint actor=- outcome=ok`),
		regexp.MustCompile(`msg=access sub=access method=GET path=/v1/signer/view route=/v1/signer/view status=200 duration=\S+ principal=signer`),
	} {
		if !want.Match(coreLog) {
			t.Errorf("the core's log has no line matching %s", want)
		}
	}
	secrets := []string{c.token, d.Operator.token}
	for _, f := range []string{"stream.token", "signer.token", "watcher.token"} {
		tok, err := os.ReadFile(filepath.Join(hosts.backup, "secrets", f))
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, strings.TrimSpace(string(tok)))
	}
	for _, p := range d.Procs() {
		b, _ := os.ReadFile(p.Log)
		for _, s := range secrets {
			if s != "" && strings.Contains(string(b), s) {
				t.Errorf("the %s log holds a token", p.Name)
			}
		}
	}
}
