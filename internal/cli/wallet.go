package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/spf13/cobra"

	"kinko/internal/api"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/opclient"
	"kinko/internal/people"
	"kinko/internal/wallet"
)

// shownAddresses is how many first receive addresses a register_wallet
// request shows by default.
const shownAddresses = 3

// walletShown is what a register_wallet request shows of a descriptor:
// its first receive addresses and its keys' master fingerprints, derived
// on this machine.
func walletShown(d *wallet.Descriptor, n int) (addrs, fps []string, err error) {
	for i := 0; i < n; i++ {
		a, _, err := d.Address(0, uint32(i))
		if err != nil {
			return nil, nil, err
		}
		addrs = append(addrs, a.EncodeAddress())
	}
	for _, k := range d.Keys {
		fps = append(fps, hex.EncodeToString(k.Fingerprint[:]))
	}
	return addrs, fps, nil
}

// listWallets reads the registered wallets (GET /v1/wallets).
func listWallets(ctx context.Context, c *opclient.Client) ([]api.WalletView, error) {
	var res struct {
		Items []api.WalletView `json:"items"`
	}
	err := c.Get(ctx, "/v1/wallets", &res)
	return res.Items, err
}

func newWalletCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "wallet", Short: "the core's wallets: register one from its descriptor or xpubs (a two-person request), list them, report deposit wallets' unused runs against a restore's gap limit"}
	var f coreFlags
	var kind, assetCode, name, descText, netName, reason string
	var xpubs []string
	var m, shown int
	var id uint32
	register := &cobra.Command{
		Use:   "register",
		Short: "ask for a wallet to be registered (a register_wallet request, signed): it is registered when a second admin approves it",
		Long: `kinko wallet register files a register_wallet request through the core's
API, signed with your key: the wallet (its id, kind, asset, descriptor and
ledger owner) exactly as it will be registered, with what this machine
derived from the descriptor for the approving admin to compare with what
the key holders read on their offline machines (kinko cold register shows
the same): every key's fingerprint and the first receive addresses. The
core checks them against the descriptor when the request is filed; the
approver's kinko requests approve derives them again.

The descriptor is given whole (--descriptor, as kinko descriptor prints
it) or built here from the account keys (--xpub, repeated, and --m), with
the code of kinko descriptor:

  kinko wallet register --core https://core.example:8443 --core-ca ca.pem \
    --operator aiko --key aiko.key --kind cold-customer --asset BTC --name cold \
    --xpub '[fp1/48h/0h/0h/2h]xpub...' --xpub '[fp2/...]xpub...' --xpub '[fp3/...]xpub...' \
    --m 2 --net mainnet --reason "the cold customer wallet"

The wallet's id is the next free one unless --id says; its ledger owner
follows from the id. A descriptor already registered is refused here,
and by the core.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			k, ok := custody.ParseWalletKind(kind)
			if !ok {
				return fmt.Errorf("--kind %q: cold-customer, hot-customer, cold-house or hot-house", kind)
			}
			var d *wallet.Descriptor
			switch {
			case descText != "" && len(xpubs) > 0:
				return errors.New("--descriptor or --xpub, not both")
			case descText != "":
				d, err = wallet.Parse(strings.TrimSpace(descText), net)
			case len(xpubs) > 0:
				d, err = descriptorOf(m, xpubs, net, wallet.WSH)
			default:
				return errors.New("the wallet: --descriptor DESC, or --xpub KEY (repeated) with --m")
			}
			if err != nil {
				return fmt.Errorf("descriptor: %w: nothing filed", err)
			}
			if shown < 1 || shown > core.MaxWalletAddresses {
				return fmt.Errorf("--addresses: 1 to %d", core.MaxWalletAddresses)
			}
			addrs, fps, err := walletShown(d, shown)
			if err != nil {
				return err
			}
			c, err := f.client(ctx)
			if err != nil {
				return err
			}
			var assets struct {
				Items []api.AssetView `json:"items"`
			}
			if err := c.Get(ctx, "/v1/assets", &assets); err != nil {
				return err
			}
			var asset *api.AssetView
			for i := range assets.Items {
				if strings.EqualFold(assets.Items[i].Code, assetCode) {
					asset = &assets.Items[i]
				}
			}
			if asset == nil || asset.Class != "chain" {
				return fmt.Errorf("--asset %q: not a chain asset of this core", assetCode)
			}
			ws, err := listWallets(ctx, c)
			if err != nil {
				return err
			}
			next := uint32(1)
			for _, w := range ws {
				if w.Descriptor == d.String() {
					return fmt.Errorf("this descriptor is wallet %d's (%s): nothing filed", w.ID, w.Kind)
				}
				if w.ID >= next {
					next = w.ID + 1
				}
				if id != 0 && w.ID == id {
					return fmt.Errorf("--id %d is registered (%s): nothing filed", id, w.Kind)
				}
			}
			if id == 0 {
				id = next
			}
			wl := custody.Wallet{ID: id, Kind: k, Asset: asset.ID, Descriptor: d.String(), Owner: custody.WalletOwner(id)}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "asking for wallet %d, %s %s, ledger owner %d:\n", wl.ID, asset.Code, kind, wl.Owner)
			if err := showWallet(out, name, kind, d, nil, netName); err != nil {
				return err
			}
			printShown(out, addrs, fps)
			rid, err := openRequest(ctx, c, core.KindRegisterWalletRequest, core.RegisterWalletPayload{Wallet: wl, Name: name, Addresses: addrs, Fingerprints: fps},
				people.RoleAdmin, reason, 24*time.Hour)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "wallet registration requested (%s): a second admin compares the fingerprints and addresses with the offline machines and approves it (kinko requests approve --id %s)\n", rid, rid)
			return nil
		},
	}
	f.add(register)
	fl := register.Flags()
	fl.StringVar(&kind, "kind", "", "cold-customer, hot-customer, cold-house or hot-house")
	fl.StringVar(&assetCode, "asset", "BTC", "the wallet's asset")
	fl.StringVar(&name, "name", "", "the wallet's name, as the offline machines register it")
	fl.StringVar(&descText, "descriptor", "", "the wallet's wsh(sortedmulti(...))#checksum descriptor (kinko descriptor)")
	fl.StringArrayVar(&xpubs, "xpub", nil, "an account key [fp/48h/1h/0h/2h]tpub... (repeatable; instead of --descriptor)")
	fl.IntVar(&m, "m", 2, "with --xpub: signatures required")
	fl.Uint32Var(&id, "id", 0, "the wallet's id (default: the next free one)")
	fl.IntVar(&shown, "addresses", shownAddresses, "how many first receive addresses the request shows")
	fl.StringVar(&netName, "net", "regtest", "network")
	fl.StringVar(&reason, "reason", "", "why")
	register.MarkFlagRequired("kind")
	register.MarkFlagRequired("reason")

	var lf coreFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "the registered wallets: id, kind, asset, descriptor, fingerprints, first receive address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := lf.client(cmd.Context())
			if err != nil {
				return err
			}
			ws, err := listWallets(cmd.Context(), c)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, w := range ws {
				fmt.Fprintf(out, "wallet %d %s %s next receive %d, next change %d\n  descriptor %s\n  fingerprints %s\n  first receive address %s\n",
					w.ID, w.Asset, w.Kind, w.NextIndex, w.NextChange, w.Descriptor, strings.Join(w.Fingerprints, " "), w.FirstAddress)
			}
			return nil
		},
	}
	lf.add(list)
	cmd.AddCommand(register, list, newWalletGapCmd())
	return cmd
}

// printShown prints what a register_wallet request shows.
func printShown(w io.Writer, addrs, fps []string) {
	fmt.Fprintf(w, "  fingerprints: %s\n", strings.Join(fps, " "))
	for i, a := range addrs {
		fmt.Fprintf(w, "  receive address %d: %s\n", i, a)
	}
}

// checkWalletRequest derives, on this machine, what a register_wallet
// request's descriptor gives and refuses a request that shows anything
// else: the approver compares what this prints with the offline machines.
// The payload is as GET /v1/requests shows it (api.RegisterWalletPayload).
func checkWalletRequest(w io.Writer, r people.Request, net *chaincfg.Params, netName string) error {
	var p api.RegisterWalletPayload
	d0 := json.NewDecoder(bytes.NewReader(r.Payload))
	d0.DisallowUnknownFields()
	if err := d0.Decode(&p); err != nil {
		return fmt.Errorf("request %s: payload: %w: not approved", r.ID, err)
	}
	if len(p.Addresses) > core.MaxWalletAddresses {
		return fmt.Errorf("request %s: more than %d addresses: not approved", r.ID, core.MaxWalletAddresses)
	}
	d, err := wallet.Parse(p.Wallet.Descriptor, net)
	if err != nil {
		return fmt.Errorf("request %s: descriptor on %s: %w: not approved", r.ID, netName, err)
	}
	addrs, fps, err := walletShown(d, max(len(p.Addresses), 1))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "request %s registers wallet %d (%s, %s, ledger owner %s), asked by %s: %s\n", r.ID, p.Wallet.ID, p.Wallet.Kind, p.Wallet.Asset, p.Wallet.Owner, r.Requester, r.Reason)
	if err := showWallet(w, p.Name, p.Wallet.Kind, d, nil, netName); err != nil {
		return err
	}
	fmt.Fprintln(w, "  derived on this machine:")
	printShown(w, addrs, fps)
	if strings.Join(p.Addresses, " ") != strings.Join(addrs, " ") || !strings.EqualFold(strings.Join(p.Fingerprints, " "), strings.Join(fps, " ")) {
		return fmt.Errorf("request %s shows addresses %v and fingerprints %v; its descriptor derives %v and %v: not approved", r.ID, p.Addresses, p.Fingerprints, addrs, fps)
	}
	return nil
}
