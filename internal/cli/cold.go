package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"
	"github.com/spf13/cobra"

	"kinko/internal/custody"
	"kinko/internal/ethcold"
	"kinko/internal/wallet"
)

// Request is what the core hands the offline ceremony: which ceremony, the
// transaction it registered, and the PSBT. Wallets is what the online side
// says our wallets are: `kinko cold sign` never believes it (only the
// wallets registered on the offline machine are ours) and refuses a
// transaction whose outputs it claims as ours or as change when they are
// not a registered wallet's.
type Request struct {
	ID      string         `json:"id"`
	Purpose string         `json:"purpose"`
	TxID    string         `json:"txid"`
	PSBT    string         `json:"psbt"`
	Wallets []wallet.Named `json:"wallets"`
	// Message, if set, makes the request a BIP-322 message to sign (kinko
	// cold sign-message): the PSBT is its to_sign, which moves nothing.
	Message string `json:"message,omitempty"`
}

func readPSBTFile(path string) (*psbt.Packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return wallet.Read(f)
}

func writePSBTFile(path string, p *psbt.Packet) error { return writePSBTFileVersion(path, p, 0, nil) }

// writePSBTFileVersion writes p as a PSBT of version 0 or 2 (BIP370); info
// is what the v2 PSBT read carried, or nil.
func writePSBTFileVersion(path string, p *psbt.Packet, version int, info *wallet.V2Info) error {
	s, err := wallet.EncodeVersion(p, version, info)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Bounds on a ceremony request: the wallets it may list (each is derived
// Gap indexes deep to test the request's claims), and its size (a PSBT
// reads up to 4 MiB, in base64 here).
const (
	maxRequestWallets = 64
	maxRequestBytes   = 8 << 20
)

// readRequest reads a ceremony request file.
func readRequest(path string) (*Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRequestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRequestBytes {
		return nil, fmt.Errorf("request %s is larger than %d bytes", path, maxRequestBytes)
	}
	var req Request
	if err := json.Unmarshal(b, &req); err != nil || req.TxID == "" {
		return nil, fmt.Errorf("request %s is not a ceremony request", path)
	}
	if len(req.Wallets) > maxRequestWallets {
		return nil, fmt.Errorf("request %s lists %d wallets, more than %d", path, len(req.Wallets), maxRequestWallets)
	}
	return &req, nil
}

// loadRegistry reads the offline machine's wallet registry, which must
// hold at least one wallet.
func loadRegistry(path string, net *chaincfg.Params) (*wallet.Registry, error) {
	reg, err := wallet.LoadRegistry(path, net)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no wallet registry at %s: register the wallets of this machine's key first (kinko cold register)", path)
	}
	if err != nil {
		return nil, err
	}
	if len(reg.Wallets) == 0 {
		return nil, fmt.Errorf("registry %s holds no wallet: register the wallets of this machine's key first (kinko cold register)", path)
	}
	return reg, nil
}

// confirm asks question and reports whether the operator typed yes.
func confirm(w io.Writer, in *bufio.Reader, question string) bool {
	fmt.Fprintf(w, "%s? type yes: ", question)
	line, _ := in.ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

// showWallet prints a wallet in full, as a hardware wallet shows a
// multisig wallet it is asked to register: threshold, every key with this
// machine's marked (mine nil: none), the descriptor with checksum, and
// the first receive and change addresses.
func showWallet(w io.Writer, name, kind string, d *wallet.Descriptor, mine *wallet.Key, netName string) error {
	recv, _, err := d.Address(0, 0)
	if err != nil {
		return err
	}
	chg, _, err := d.Address(1, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "wallet %s (%s): %d-of-%d %s, network %s\n", name, kind, d.M, len(d.Keys), d.TypeName(), netName)
	for i := range d.Keys {
		k := &d.Keys[i]
		mark := ""
		if mine != nil && k.Equal(mine) {
			mark = "   <- this machine's key"
		}
		fmt.Fprintf(w, "  key %d: fingerprint %x  derivation %s  %s%s\n", i+1, k.Fingerprint, k.Derivation(), k.XPub.String(), mark)
	}
	fmt.Fprintf(w, "  descriptor: %s\n", d.String())
	fmt.Fprintf(w, "  both chains: %s\n", d.Multipath())
	fmt.Fprintf(w, "  first receive address: %s\n", recv.EncodeAddress())
	fmt.Fprintf(w, "  first change address:  %s\n", chg.EncodeAddress())
	return nil
}

func newColdCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cold", Short: "the offline ceremony: register wallets, sign, combine, finalize and broadcast PSBTs; register, sign, combine and submit Safe transactions"}
	var keyFile, passFile, in, out, reqFile, regFile, netName string
	var account uint32
	var yes, allowUnproved bool
	var psbtVersion int
	var signNonce uint64
	sign := &cobra.Command{
		Use:   "sign",
		Short: "show a PSBT in plain words, recomputed from the wallets registered on this machine, and sign it after you confirm",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reqFile != "" && ethcold.IsRequestFile(reqFile) {
				var expect *uint64
				if cmd.Flags().Changed("nonce") {
					expect = &signNonce
				}
				return signSafe(cmd, regFile, reqFile, out, netName, keyFile, passFile, expect, yes)
			}
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			reg, err := loadRegistry(regFile, net)
			if err != nil {
				return err
			}
			set, err := reg.Set()
			if err != nil {
				return err
			}
			if reqFile == "" && in == "" {
				return fmt.Errorf("give --request (a kinko ceremony) or --psbt (a PSBT made elsewhere, by Core or Sparrow, for a wallet registered here)")
			}
			if psbtVersion != -1 && psbtVersion != 0 && psbtVersion != 2 {
				return fmt.Errorf("--psbt-version is 0 or 2 (BIP370), not %d", psbtVersion)
			}
			var req *Request
			var claims *wallet.Set
			if reqFile != "" {
				if req, err = readRequest(reqFile); err != nil {
					return err
				}
				// The request's wallets are what the online side claims
				// is ours: never believed, only held against it.
				if claims, err = wallet.NewSetFor(net, req.Wallets); err != nil {
					return fmt.Errorf("request %s lists a wallet that does not parse (%w): not signed", reqFile, err)
				}
				if req.Message != "" {
					return fmt.Errorf("request %s is a BIP-322 message to sign, not a transaction: use kinko cold sign-message", reqFile)
				}
			}
			var p *psbt.Packet
			var ver int
			var info *wallet.V2Info
			if in != "" {
				f, err := os.Open(in)
				if err != nil {
					return err
				}
				p, ver, info, err = wallet.ReadVersioned(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w: not signed", in, err)
				}
			} else if p, ver, info, err = wallet.ReadVersioned(strings.NewReader(req.PSBT)); err != nil {
				return err
			}
			if psbtVersion != -1 && psbtVersion != ver {
				ver, info = psbtVersion, nil
			}
			if err := wallet.FillWitnessUtxos(p); err != nil {
				return fmt.Errorf("%w: not signed", err)
			}
			txid := p.UnsignedTx.TxHash().String()
			if req != nil && txid != req.TxID {
				return fmt.Errorf("the PSBT's transaction %s is not the one the ceremony %s registered (%s): not signed", txid, req.ID, req.TxID)
			}
			desc, err := set.Describe(p, claims)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if req != nil {
				fmt.Fprintf(w, "ceremony %s (%s), transaction %s\n%s", req.ID, req.Purpose, req.TxID, desc)
			} else {
				fmt.Fprintf(w, "PSBT %s (made elsewhere: no kinko ceremony), transaction %s\n%s", in, txid, desc)
			}
			if desc.Unproved > 0 && !allowUnproved {
				desc.Refused = append(desc.Refused, fmt.Errorf("%d segwit v0 input(s) without their previous transaction: their amounts, and so the fee, are only what the PSBT claims (kinko ceremony --rpc, or the maker's non_witness_utxo, adds them; --allow-unproved-amounts signs anyway)", desc.Unproved))
			}
			if err := desc.Refusal(); err != nil {
				return fmt.Errorf("%w\nnot signed, nothing written", err)
			}
			// One reader for the passphrase and the confirmation: both
			// lines come from the same standard input.
			stdin := bufio.NewReader(cmd.InOrStdin())
			_, ak, acct, err := loadAccount(cmd, stdin, netName, keyFile, passFile, account)
			if err != nil {
				return err
			}
			if !yes && !confirm(w, stdin, "sign this transaction") {
				return fmt.Errorf("not confirmed: nothing signed")
			}
			n, err := set.Sign(p, acct, ak.Fingerprint)
			if err != nil {
				return err
			}
			if err := writePSBTFileVersion(out, p, ver, info); err != nil {
				return err
			}
			fmt.Fprintf(w, "signed %d input(s) with key %x; written to %s (PSBT version %d)\n", n, ak.Fingerprint, out, ver)
			return nil
		},
	}
	sign.Flags().StringVar(&keyFile, "key", "", "key file")
	sign.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (default: standard input)")
	sign.Flags().StringVar(&reqFile, "request", "", "the ceremony request from the core (the registered transaction; its wallets are never trusted), or a Safe request (kinko ceremony safe); without it, --psbt is a PSBT made elsewhere")
	sign.Flags().Uint64Var(&signNonce, "nonce", 0, "a Safe request: the nonce you expect it at, when the nonces since this machine last signed were signed on other machines")
	sign.Flags().StringVar(&regFile, "registry", "", "this machine's wallet registry (kinko cold register): the only wallets shown as ours")
	sign.Flags().StringVar(&in, "psbt", "", "PSBT to sign, version 0 or 2, base64 or binary (default: the request's)")
	sign.Flags().IntVar(&psbtVersion, "psbt-version", -1, "write the signed PSBT as version 0 or 2 (BIP370) (default: the version read)")
	sign.Flags().BoolVar(&allowUnproved, "allow-unproved-amounts", false, "sign segwit v0 inputs that lack their previous transaction")
	sign.Flags().StringVar(&out, "out", "", "signed PSBT to write (a Safe request: the signature file)")
	sign.Flags().BoolVar(&yes, "yes", false, "sign without asking (scripts and tests)")
	sign.Flags().Uint32Var(&account, "account", 0, "BIP48 account")
	sign.Flags().StringVar(&netName, "net", "regtest", "network")
	for _, f := range []string{"key", "registry", "out"} {
		sign.MarkFlagRequired(f)
	}

	var name, kind, descText string
	var destination bool
	var sr safeRegister
	register := &cobra.Command{
		Use:   "register",
		Short: "on the offline machine: register a wallet holding this machine's key, after showing it in full and your confirmation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			if _, ok := custody.ParseWalletKind(kind); !ok {
				return fmt.Errorf("unknown wallet kind %q (cold-customer, hot-customer, cold-house, hot-house)", kind)
			}
			if (sr.addr == "") == (descText == "") {
				return fmt.Errorf("give --descriptor (a Bitcoin wallet) or --safe (an Ethereum Safe): nothing registered")
			}
			if sr.addr != "" {
				return sr.run(cmd, regFile, name, kind, netName, keyFile, passFile, destination, yes)
			}
			d, err := wallet.Parse(strings.TrimSpace(descText), net)
			if err != nil {
				return fmt.Errorf("descriptor: %w: nothing registered", err)
			}
			reg, err := wallet.LoadRegistry(regFile, net)
			if errors.Is(err, os.ErrNotExist) {
				reg, err = wallet.NewRegistry(net), nil
			}
			if err != nil {
				return err
			}
			stdin := bufio.NewReader(cmd.InOrStdin())
			_, ak, _, err := loadAccount(cmd, stdin, netName, keyFile, passFile, account)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			// Registered in memory; the file changes only after the
			// operator confirms.
			var added bool
			if destination {
				added, err = reg.RegisterDestination(name, kind, d, &ak)
			} else {
				added, err = reg.Register(name, kind, d, &ak)
			}
			if err != nil {
				return fmt.Errorf("%w: nothing registered", err)
			}
			if !added {
				fmt.Fprintf(w, "wallet %s (%s) is already registered in %s with this descriptor: nothing changed\n", name, kind, regFile)
				return nil
			}
			fmt.Fprintln(w, "register this wallet on this machine:")
			if err := showWallet(w, name, kind, d, &ak, netName); err != nil {
				return err
			}
			if destination {
				fmt.Fprintln(w, "  as a DESTINATION: this machine holds none of its keys; outputs paying it will be shown as ours, its inputs are never signed here")
			}
			if !yes && !confirm(w, stdin, "register this wallet") {
				return fmt.Errorf("not confirmed: nothing registered")
			}
			if err := reg.Save(regFile); err != nil {
				return err
			}
			fmt.Fprintf(w, "registered %s (%s) in %s (%d wallet(s))\n", name, kind, regFile, len(reg.Wallets))
			return nil
		},
	}
	register.Flags().StringVar(&keyFile, "key", "", "this machine's key file")
	register.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (default: standard input)")
	register.Flags().Uint32Var(&account, "account", 0, "BIP48 account")
	register.Flags().StringVar(&regFile, "registry", "", "the wallet registry file (made if missing; 0600)")
	register.Flags().StringVar(&name, "name", "", "the wallet's name on this machine")
	register.Flags().StringVar(&kind, "kind", "", "cold-customer, hot-customer, cold-house or hot-house")
	register.Flags().StringVar(&descText, "descriptor", "", "the wallet's wsh(sortedmulti(...))#checksum descriptor (or --safe)")
	register.Flags().BoolVar(&yes, "yes", false, "register without asking (scripts and tests)")
	register.Flags().BoolVar(&destination, "destination", false, "register a wallet that holds none of this machine's keys, which ceremonies may pay (the hot wallet a refill fills): shown as ours, never signed for")
	register.Flags().StringVar(&netName, "net", "regtest", "network")
	sr.add(register)
	for _, f := range []string{"key", "registry", "name", "kind"} {
		register.MarkFlagRequired(f)
	}

	list := &cobra.Command{
		Use:   "wallets",
		Short: "list the wallets (or the Safes) registered on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sreg, err := ethcold.LoadRegistry(regFile); err == nil {
				listSafes(cmd.OutOrStdout(), regFile, sreg)
				return nil
			}
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			reg, err := wallet.LoadRegistry(regFile, net)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%d wallet(s) registered in %s\n", len(reg.Wallets), regFile)
			for i, e := range reg.Wallets {
				var mine wallet.Key
				if !e.Destination {
					if mine, err = wallet.ParseKey(e.Key, net); err != nil {
						return err
					}
				}
				if err := showWallet(w, e.Name, e.Kind, reg.Descriptor(i), &mine, netName); err != nil {
					return err
				}
				if e.Destination {
					fmt.Fprintln(w, "  a destination: this machine holds none of its keys")
				}
			}
			return nil
		},
	}
	list.Flags().StringVar(&regFile, "registry", "", "the wallet registry file")
	list.Flags().StringVar(&netName, "net", "regtest", "network")
	list.MarkFlagRequired("registry")

	var combineOut string
	var combineVersion int
	var combineReq string
	combine := &cobra.Command{
		Use:   "combine --out FILE PSBT PSBT... | combine --request SAFE-REQUEST --out FILE SIGNATURE...",
		Short: "merge the signatures of PSBTs of the same transaction, or the owners' signatures of a Safe request",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if combineReq != "" {
				return combineSafe(cmd, combineReq, combineOut, args)
			}
			if len(args) < 2 {
				return fmt.Errorf("give two PSBTs or more")
			}
			a, err := readPSBTFile(args[0])
			if err != nil {
				return err
			}
			for _, f := range args[1:] {
				b, err := readPSBTFile(f)
				if err != nil {
					return err
				}
				if err := wallet.Combine(a, b); err != nil {
					return err
				}
			}
			if combineVersion != 0 && combineVersion != 2 {
				return fmt.Errorf("--psbt-version is 0 or 2 (BIP370), not %d", combineVersion)
			}
			return writePSBTFileVersion(combineOut, a, combineVersion, nil)
		},
	}
	combine.Flags().StringVar(&combineOut, "out", "", "combined PSBT to write")
	combine.Flags().IntVar(&combineVersion, "psbt-version", 0, "write the combined PSBT as version 0 or 2 (BIP370)")
	combine.Flags().StringVar(&combineReq, "request", "", "a Safe request (kinko ceremony safe): combine its owners' signature files, checked against the SafeTx computed from it")
	combine.MarkFlagRequired("out")

	var finIn, finOut string
	finalize := &cobra.Command{
		Use:   "finalize",
		Short: "finalize a fully signed PSBT and write the raw transaction (hex)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := readPSBTFile(finIn)
			if err != nil {
				return err
			}
			tx, err := wallet.Finalize(p)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			tx.Serialize(&buf)
			if err := os.WriteFile(finOut, []byte(hex.EncodeToString(buf.Bytes())+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "transaction %s written to %s\n", tx.TxHash(), finOut)
			return nil
		},
	}
	finalize.Flags().StringVar(&finIn, "psbt", "", "signed PSBT")
	finalize.Flags().StringVar(&finOut, "out", "", "raw transaction file to write")
	finalize.MarkFlagRequired("psbt")
	finalize.MarkFlagRequired("out")

	var txFile string
	var nf nodeFlags
	broadcast := &cobra.Command{
		Use:   "broadcast",
		Short: "send a finalized transaction to a node (again is harmless)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(txFile)
			if err != nil {
				return err
			}
			raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
			if err != nil {
				return fmt.Errorf("%s is not a hex transaction", txFile)
			}
			tx := wire.NewMsgTx(2)
			if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
				return fmt.Errorf("%s does not decode as a transaction: %w", txFile, err)
			}
			n, _, err := nf.dial()
			if err != nil {
				return err
			}
			defer n.Close()
			id, err := n.Broadcast(context.Background(), tx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broadcast %s\n", id)
			return nil
		},
	}
	broadcast.Flags().StringVar(&txFile, "tx", "", "raw transaction file (hex)")
	nf.add(broadcast)
	broadcast.MarkFlagRequired("tx")
	cmd.AddCommand(register, list, sign, newColdSignMessageCmd(), combine, finalize, broadcast, newColdSubmitCmd())
	return cmd
}
