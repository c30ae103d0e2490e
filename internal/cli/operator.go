package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/api"
	"kinko/internal/core"
	"kinko/internal/opclient"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// coreFlags are how a command that writes the journal reaches the core:
// through its HTTP API, signed in as an operator with their CLI key. No
// command opens a data directory in someone's name.
type coreFlags struct {
	url, ca, operator, key string
}

func (f *coreFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "core", "http://127.0.0.1:8080", "the core's API (https://host:port across hosts)")
	cmd.Flags().StringVar(&f.ca, "core-ca", "", "with an https:// --core: the CA certificate (PEM) its certificate is checked against (kinko tls init's ca.pem; default: the system's roots)")
	cmd.Flags().StringVar(&f.operator, "operator", "", "the operator acting")
	cmd.Flags().StringVar(&f.key, "key", "", "the operator's CLI key file (PKCS#8 Ed25519 or P-256), enrolled through two admins")
	cmd.MarkFlagRequired("operator")
	cmd.MarkFlagRequired("key")
}

// addOptional adds the flags for a command that writes only sometimes
// (a dry run does not).
func (f *coreFlags) addOptional(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "core", "http://127.0.0.1:8080", "the core's API (to write)")
	cmd.Flags().StringVar(&f.ca, "core-ca", "", "with an https:// --core: the CA certificate (PEM) its certificate is checked against")
	cmd.Flags().StringVar(&f.operator, "operator", "", "the operator writing it")
	cmd.Flags().StringVar(&f.key, "key", "", "the operator's CLI key file")
}

// client signs in.
func (f *coreFlags) client(ctx context.Context) (*opclient.Client, error) {
	if f.operator == "" || f.key == "" {
		return nil, errors.New("this writes the journal through the core: --core URL --operator NAME --key FILE")
	}
	c, err := f.unsigned()
	if err != nil {
		return nil, err
	}
	if err := c.Login(ctx); err != nil {
		return nil, fmt.Errorf("sign in as %s at %s: %w", f.operator, f.url, err)
	}
	return c, nil
}

// unsigned returns the operator's client, not signed in.
func (f *coreFlags) unsigned() (*opclient.Client, error) {
	k, err := passkey.LoadSoftKey(f.key)
	if err != nil {
		return nil, err
	}
	hc, err := coreHTTP(f.url, f.ca, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	c := opclient.New(f.url, f.operator, k)
	c.HTTP = hc
	return c, nil
}

// newRequestID draws an id for a request the CLI files.
func newRequestID(kind people.RequestKind) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%x", strings.ReplaceAll(string(kind), "_", "-"), b)
}

// openRequest files a signed request as the client's operator.
func openRequest(ctx context.Context, c *opclient.Client, kind people.RequestKind, payload any, role people.Role, reason string, ttl time.Duration) (string, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	id := newRequestID(kind)
	_, err = c.Command(ctx, core.OpenRequest{Request: people.Request{ID: id, Kind: kind, Payload: p, Requester: c.Operator, Reason: reason,
		RequiredRole: role, Expires: time.Now().Add(ttl).UnixNano()}})
	return id, err
}

// foundingFlags are the flags that found a journal's operators: `kinko
// operators bootstrap` and `kinko init` share them and what they do.
type foundingFlags struct {
	rpID    string
	names   []string
	origins []string
	roles   []string
	ttl     time.Duration
}

func (f *foundingFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.names, "name", nil, "a founding operator (repeatable, at least two)")
	fl.StringSliceVar(&f.roles, "role", nil, "the founders' roles (default admin)")
	fl.StringVar(&f.rpID, "rp-id", "localhost", "the WebAuthn relying party id: the console's domain")
	fl.StringSliceVar(&f.origins, "origin", nil, "the console's origin, e.g. https://ops.example.jp (repeatable)")
	fl.DurationVar(&f.ttl, "ttl", 72*time.Hour, "how long the codes work")
}

// build checks the flags and returns the bootstrap command with a fresh
// one-time enrolment code for each founder (the journal keeps only their
// SHA-256).
func (f *foundingFlags) build(now time.Time) (core.Bootstrap, map[string]string, error) {
	if len(f.names) < people.MinFounders {
		return core.Bootstrap{}, nil, fmt.Errorf("at least %d founders (--name, repeated)", people.MinFounders)
	}
	if len(f.origins) == 0 {
		return core.Bootstrap{}, nil, errors.New("--origin: the console's origin (https://host[:port]), repeatable")
	}
	rs := []people.Role{people.RoleAdmin}
	if len(f.roles) > 0 {
		rs = nil
		for _, r := range f.roles {
			rs = append(rs, people.Role(r))
		}
	}
	b := core.Bootstrap{RP: passkey.RP{ID: f.rpID, Origins: f.origins}, Expires: now.Add(f.ttl).UnixNano()}
	codes := map[string]string{}
	for _, n := range f.names {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return core.Bootstrap{}, nil, err
		}
		code := hex.EncodeToString(raw[:])
		codes[n] = code
		b.Founders = append(b.Founders, people.Founder{Name: n, Roles: rs, Code: sha256.Sum256([]byte(code))})
	}
	return b, codes, nil
}

// print tells each founder's code and enrolment link.
func (f *foundingFlags) print(out io.Writer, seq uint64, b core.Bootstrap, codes map[string]string) {
	fmt.Fprintf(out, "founders journaled (entry %d); enrolment codes, each usable once, until %s:\n", seq, time.Unix(0, b.Expires).UTC().Format(time.RFC3339))
	for _, n := range f.names {
		fmt.Fprintf(out, "  %-12s code %s\n               %s/console/enrol?%s\n", n, codes[n], f.origins[0], url.Values{"operator": {n}, "code": {codes[n]}}.Encode())
	}
	fmt.Fprintln(out, "Hand each founder their own line, in person; nobody else should see it.")
}

func newOperatorsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "operators", Short: "operators and their credentials: bootstrap, CLI keys"}
	var dir string
	var ff foundingFlags
	bootstrap := &cobra.Command{
		Use:   "bootstrap",
		Short: "create the founding operators of an empty journal, on the core's host (core stopped), and print their one-time enrolment links",
		Long: `kinko operators bootstrap creates the founding operators of a journal that has
none, with the console's WebAuthn relying party (its domain and origins), and
prints each founder's one-time enrolment code and link. Each founder opens
their link and registers a security key or passkey (or enrols a CLI key
with kinko operators enrol); a founder's first credential is active at
once. After bootstrap every change to operators, roles and credentials is a
two-person request: proposed by one admin, approved by another who is
neither the proposer nor the operator changed. Keep at least three admins,
so that an admin's own credential can be replaced. kinko init does this
and journals the assets too, on an empty data directory.

  kinko operators bootstrap --data /var/lib/kinko --rp-id ops.example.jp \
    --origin https://ops.example.jp --name aiko --name ren --name yui`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, codes, err := ff.build(time.Now())
			if err != nil {
				return err
			}
			c, err := core.Open(cmd.Context(), core.Config{Dir: dir})
			if err != nil {
				return err
			}
			defer c.Close()
			o, err := c.Submit(cmd.Context(), time.Now(), b)
			if err == nil {
				err = o.Err
			}
			if err != nil {
				return err
			}
			ff.print(cmd.OutOrStdout(), o.Seq, b, codes)
			return nil
		},
	}
	dataFlag(bootstrap, &dir)
	ff.add(bootstrap)

	var keyOut string
	var p256 bool
	key := &cobra.Command{
		Use:   "key",
		Short: "make a CLI key file (0600) and print its public key and fingerprint to enrol",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			alg := passkey.AlgEdDSA
			if p256 {
				alg = passkey.AlgES256
			}
			k, err := passkey.NewSoftKey(alg)
			if err != nil {
				return err
			}
			if err := passkey.SaveSoftKey(keyOut, k); err != nil {
				return err
			}
			pemKey, _ := passkey.PublicKeyPEM(k.PublicKey())
			fmt.Fprintf(cmd.OutOrStdout(), "key written to %s\nfingerprint %s\n%s", keyOut, people.Fingerprint(k.PublicKey()), pemKey)
			return nil
		},
	}
	key.Flags().StringVar(&keyOut, "out", "operator.key", "key file to write (never overwritten)")
	key.Flags().BoolVar(&p256, "p256", false, "ECDSA P-256 instead of Ed25519")

	var ef coreFlags
	var code, label string
	enrol := &cobra.Command{
		Use:   "enrol",
		Short: "enrol a CLI key with a one-time enrolment code (a founder's first credential is active; any other waits for two admins)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := ef.unsigned()
			if err != nil {
				return err
			}
			res, err := c.EnrolKey(cmd.Context(), code, label)
			if err != nil {
				return err
			}
			state := "pending: read the fingerprint to the two admins who approve it (request kind enrol_credential)"
			if res.Active {
				state = "active"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "credential %s of %s enrolled, %s\nfingerprint %s\n", res.Credential, res.Operator, state, res.Fingerprint)
			return nil
		},
	}
	ef.add(enrol)
	enrol.Flags().StringVar(&code, "code", "", "the one-time enrolment code")
	enrol.Flags().StringVar(&label, "label", "cli key", "a label")
	enrol.MarkFlagRequired("code")
	cmd.AddCommand(bootstrap, key, enrol)
	return cmd
}

func newRequestsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "requests", Short: "two-person requests through the core's API: list, open, approve, reject (each signed with your key)"}
	var lf coreFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "the requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := lf.client(cmd.Context())
			if err != nil {
				return err
			}
			var res struct {
				Items []api.RequestView `json:"items"`
			}
			if err := c.Get(cmd.Context(), "/v1/requests", &res); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, r := range res.Items {
				fmt.Fprintf(out, "%-32s %-22s %-9s by %-8s needs %-8s %s %s\n", r.ID, r.Kind, r.State, r.Requester, r.RequiredRole, r.Payload, r.Reason)
			}
			return nil
		},
	}
	lf.add(list)
	var of coreFlags
	var kind, payload, role, reason string
	var ttl time.Duration
	open := &cobra.Command{
		Use:   "open",
		Short: "file a request (kind, JSON payload, the role that approves it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := of.client(cmd.Context())
			if err != nil {
				return err
			}
			if !json.Valid([]byte(payload)) {
				return fmt.Errorf("--payload is not JSON")
			}
			id, err := openRequest(cmd.Context(), c, people.RequestKind(kind), json.RawMessage(payload), people.Role(role), reason, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "request %s filed; it takes effect when a second operator with the %s role approves it\n", id, role)
			return nil
		},
	}
	of.add(open)
	open.Flags().StringVar(&kind, "kind", "", "request kind")
	open.Flags().StringVar(&payload, "payload", "{}", "the kind's payload, JSON")
	open.Flags().StringVar(&role, "role", "approver", "the role that approves it")
	open.Flags().StringVar(&reason, "reason", "", "why")
	open.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long it waits")
	open.MarkFlagRequired("kind")
	open.MarkFlagRequired("reason")
	cmd.AddCommand(list, open, decideCmd(true), decideCmd(false))
	return cmd
}

func decideCmd(approve bool) *cobra.Command {
	var f coreFlags
	var id, reason, netName string
	verb := map[bool]string{true: "approve", false: "reject"}[approve]
	c := &cobra.Command{
		Use:   verb,
		Short: verb + " a request, signed with your key (a wallet's registration is shown as derived here first, and refused if the request shows anything else)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			if approve {
				var res struct {
					Items []api.RequestView `json:"items"`
				}
				if err := c.Get(cmd.Context(), "/v1/requests", &res); err != nil {
					return err
				}
				for _, r := range res.Items {
					if r.ID != id || r.Kind != core.KindRegisterWalletRequest {
						continue
					}
					net, err := netByName(netName)
					if err != nil {
						return err
					}
					if err := checkWalletRequest(cmd.OutOrStdout(), people.Request{ID: r.ID, Kind: r.Kind, Payload: r.Payload, Requester: r.Requester, Reason: r.Reason, RequiredRole: r.RequiredRole}, net, netName); err != nil {
						return err
					}
				}
			}
			if _, err := c.Command(cmd.Context(), core.DecideRequest{ID: id, Decider: c.Operator, Reason: reason, Approve: approve}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "request %s %sd by %s\n", id, verb, c.Operator)
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&id, "id", "", "request id")
	c.Flags().StringVar(&reason, "reason", "", "why")
	c.Flags().StringVar(&netName, "net", "regtest", "the network of a wallet the request registers")
	c.MarkFlagRequired("id")
	c.MarkFlagRequired("reason")
	return c
}
