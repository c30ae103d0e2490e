package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/api"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/secrets"
)

// assetSpec is an asset as `kinko init` takes it (--assets FILE is a JSON
// array of them).
type assetSpec struct {
	ID       uint32 `json:"id"`
	Code     string `json:"code"`
	Decimals uint8  `json:"decimals"`
	Class    string `json:"class"` // chain or fiat
}

// maxInitAssets bounds the assets of one init.
const maxInitAssets = 256

func (a assetSpec) asset() (ledger.Asset, error) {
	out := ledger.Asset{ID: ledger.AssetID(a.ID), Code: a.Code, Decimals: a.Decimals}
	switch a.Class {
	case "chain":
		out.Class = ledger.ClassChain
	case "fiat":
		out.Class = ledger.ClassFiat
	default:
		return out, fmt.Errorf("asset %s: class %q: chain or fiat", a.Code, a.Class)
	}
	return out, nil
}

// parseAssetFlag reads ID:CODE:DECIMALS:CLASS.
func parseAssetFlag(s string) (assetSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return assetSpec{}, fmt.Errorf("--asset %q: want ID:CODE:DECIMALS:CLASS, e.g. 2:BTC:8:chain or 1:JPY:0:fiat", s)
	}
	id, err := strconv.ParseUint(parts[0], 10, 32)
	if err != nil {
		return assetSpec{}, fmt.Errorf("--asset %q: id: %w", s, err)
	}
	dec, err := strconv.ParseUint(parts[2], 10, 8)
	if err != nil {
		return assetSpec{}, fmt.Errorf("--asset %q: decimals: %w", s, err)
	}
	return assetSpec{ID: uint32(id), Code: parts[1], Decimals: uint8(dec), Class: parts[3]}, nil
}

// readAssetsFile reads a JSON array of assets, strictly.
func readAssetsFile(path string) ([]assetSpec, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	var out []assetSpec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the array", path)
	}
	return out, nil
}

func newInitCmd() *cobra.Command {
	var dir, secretsDir, assetsFile string
	var assetFlags []string
	var ff foundingFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "found an empty data directory on the core's host: the founding operators, the relying party, the assets and the house accounts, and the secrets the other hosts are given",
		Long: `kinko init writes the opening entries of a new journal, on the core's host,
with no core running: the founding operators with their one-time
enrolment codes and the console's relying party (as kinko operators
bootstrap does), the assets (--asset, repeatable, or --assets FILE, a
JSON array of {"id", "code", "decimals", "class": "chain"|"fiat"}), and
for each asset the house's own account and its equity account. It makes
the core's secrets too, in the secrets directory (--secrets, by default
DATA.secrets, outside the data directory so that a backup of the data
carries no key): the journal's head key, the TOTP sealing key, and the
stream, signer and watcher tokens to hand to those hosts. Everything is checked on a scratch copy
first: either every entry is journaled or none is.

It refuses a data directory whose journal holds any entry, and changes
nothing there: a journal is founded once. After it, wallets, rules and
markets go through the core's API as two-person requests
(kinko wallet register, kinko rules set, kinko market add, each
approved with kinko requests approve): docs/deploy.md.

  kinko init --data /var/lib/kinko --rp-id ops.example.jp \
    --origin https://ops.example.jp --name aiko --name ren --name yui \
    --asset 1:JPY:0:fiat --asset 2:BTC:8:chain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			now := time.Now()
			b, codes, err := ff.build(now)
			if err != nil {
				return err
			}
			var specs []assetSpec
			if assetsFile != "" {
				if specs, err = readAssetsFile(assetsFile); err != nil {
					return fmt.Errorf("--assets: %w", err)
				}
			}
			for _, a := range assetFlags {
				sp, err := parseAssetFlag(a)
				if err != nil {
					return err
				}
				specs = append(specs, sp)
			}
			if len(specs) == 0 || len(specs) > maxInitAssets {
				return fmt.Errorf("1 to %d assets (--asset ID:CODE:DECIMALS:CLASS, repeatable, or --assets FILE)", maxInitAssets)
			}
			var assets []ledger.Asset
			var accounts []ledger.AccountKey
			for _, sp := range specs {
				a, err := sp.asset()
				if err != nil {
					return err
				}
				assets = append(assets, a)
				accounts = append(accounts, ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: a.ID, Kind: ledger.KindHouse},
					ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: a.ID, Kind: ledger.KindEquity})
			}
			cmds := []core.Command{b, core.CreateAssets{Assets: assets}, core.CreateAccounts{Keys: accounts}}
			if err := refuseFounded(ctx, dir); err != nil {
				return err
			}
			// A scratch copy takes every entry first: a refusal there
			// leaves the data directory untouched.
			sec, err := secrets.Open(secretsDir, dir, nil)
			if err != nil {
				return err
			}
			scratch, err := os.MkdirTemp("", "kinko-init-*")
			if err != nil {
				return err
			}
			defer os.RemoveAll(scratch)
			if _, err := initJournal(ctx, filepath.Join(scratch, "data"), filepath.Join(scratch, "secrets"), now, cmds, true); err != nil {
				return fmt.Errorf("nothing written to %s: %w", dir, err)
			}
			if err := refuseFounded(ctx, dir); err != nil {
				return err
			}
			seqs, err := initJournal(ctx, dir, sec.Path, now, cmds, false)
			if err != nil {
				return err
			}
			// The API's secrets: the tokens the other hosts are given.
			c, err := core.Open(ctx, core.Config{Dir: dir, SecretsDir: sec.Path})
			if err != nil {
				return err
			}
			srv, err := api.New(api.Config{Core: c, DataDir: dir, SecretsDir: sec.Path})
			if err == nil {
				srv.Close()
			}
			c.Close()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			abs, _ := filepath.Abs(dir)
			fmt.Fprintf(out, "journal founded in %s: %d entries\n", abs, len(seqs))
			ff.print(out, seqs[0], b, codes)
			fmt.Fprintf(out, "assets:")
			for _, a := range assets {
				fmt.Fprintf(out, " %s (id %d, %d decimals)", a.Code, a.ID, a.Decimals)
			}
			absSec, _ := filepath.Abs(sec.Path)
			fmt.Fprintf(out, "\nsecrets in %s (back it up apart from the data directory); hand each host only its own:\n", absSec)
			fmt.Fprintf(out, "  co-signer: stream.token       watcher: stream.token, watcher.token       hot signer: signer.token\n")
			fmt.Fprintf(out, "next (docs/deploy.md): start the core (kinko core --data %s --tls-cert core.pem --tls-key core.key ...);\n", dir)
			fmt.Fprintf(out, "  each founder enrols a key (kinko operators enrol --core URL --core-ca ca.pem --operator NAME --key FILE --code CODE);\n")
			fmt.Fprintf(out, "  then wallets, rules and markets as two-person requests (kinko wallet register, kinko rules set, kinko market add; kinko requests approve)\n")
			return nil
		},
	}
	dataFlag(cmd, &dir)
	cmd.Flags().StringVar(&secretsDir, "secrets", "", "the core's secrets directory (default DATA.secrets, outside the data directory); kinko core is given the same --secrets")
	ff.add(cmd)
	cmd.Flags().StringArrayVar(&assetFlags, "asset", nil, "an asset: ID:CODE:DECIMALS:CLASS, e.g. 2:BTC:8:chain or 1:JPY:0:fiat (repeatable)")
	cmd.Flags().StringVar(&assetsFile, "assets", "", `a JSON file of assets: [{"id": 2, "code": "BTC", "decimals": 8, "class": "chain"}]`)
	return cmd
}

// errFounded refuses a data directory whose journal holds entries.
var errFounded = errors.New("the journal holds entries: kinko init founds an empty data directory only, and changed nothing")

// refuseFounded refuses a data directory whose journal holds entries.
func refuseFounded(ctx context.Context, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "journal")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	j, err := openJournal(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	head, _, _ := j.Head()
	j.Close()
	if head > 0 {
		return fmt.Errorf("%s: %d entries: %w", dir, head, errFounded)
	}
	return nil
}

// initJournal submits cmds, in order, to a core on dir (its keys in
// secretsDir) and returns their
// entries; the first refusal ends it.
func initJournal(ctx context.Context, dir, secretsDir string, now time.Time, cmds []core.Command, scratch bool) ([]uint64, error) {
	c, err := core.Open(ctx, core.Config{Dir: dir, SecretsDir: secretsDir, NoSync: scratch})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var seqs []uint64
	for _, cmd := range cmds {
		o, err := c.Submit(ctx, now, cmd)
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			return seqs, fmt.Errorf("%s: %w", cmd.Kind(), err)
		}
		seqs = append(seqs, o.Seq)
	}
	return seqs, nil
}
