package cli

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/spf13/cobra"

	"kinko/internal/api"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/custody"
	"kinko/internal/ethcold"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
	"kinko/internal/keys"
)

// The offline ceremony on Ethereum (internal/ethcold): `kinko cold
// register --safe`, `kinko ceremony safe`, `kinko cold sign` on a Safe
// request, `kinko cold combine --request`, `kinko cold submit`.

// loadEthKey reads the key file and derives its Ethereum owner key
// (keys.EthereumPath).
func loadEthKey(cmd *cobra.Command, in *bufio.Reader, netName, keyFile, passFile string) (*ecdsa.PrivateKey, error) {
	net, err := netByName(netName)
	if err != nil {
		return nil, err
	}
	pass, err := readPassphrase(cmd, in, passFile)
	if err != nil {
		return nil, err
	}
	k, err := keys.Load(keyFile, pass, net)
	if err != nil {
		return nil, err
	}
	return k.EthereumKey()
}

// loadSafeRegistry reads the offline machine's registry of Safes, which
// must hold at least one Safe.
func loadSafeRegistry(path string) (*ethcold.Registry, error) {
	reg, err := ethcold.LoadRegistry(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no Safe registry at %s: register the Safes of this machine's key first (kinko cold register --safe)", path)
	}
	if err != nil {
		return nil, err
	}
	if len(reg.Safes) == 0 {
		return nil, fmt.Errorf("registry %s holds no Safe: register the Safes of this machine's key first (kinko cold register --safe)", path)
	}
	return reg, nil
}

// showSafe prints a registered Safe in full: chain, address, threshold,
// every owner with this machine's marked, the pinned MultiSendCallOnly
// and the next nonce.
func showSafe(w io.Writer, e *ethcold.Entry, me common.Address) {
	fmt.Fprintf(w, "Safe %s: %d-of-%d Safe %s on chain %d\n", e.Label(), e.Threshold, len(e.Owners), e.Address, e.ChainID)
	for i, o := range e.OwnerAddresses() {
		mark := ""
		if o == me {
			mark = "   <- this machine's key (" + keys.EthereumPath + ")"
		}
		fmt.Fprintf(w, "  owner %d: %s%s\n", i+1, o.Hex(), mark)
	}
	if e.MultiSend != "" {
		fmt.Fprintf(w, "  MultiSendCallOnly pinned: %s (the only DELEGATECALL signed here; its calls are shown one by one)\n", e.MultiSend)
	} else {
		fmt.Fprintln(w, "  MultiSendCallOnly pinned: none (every DELEGATECALL is refused)")
	}
	if !e.Destination {
		fmt.Fprintf(w, "  next nonce: %d\n", e.NextNonce)
	}
	if e.Descriptor != "" {
		fmt.Fprintf(w, "  wallet descriptor: %s\n  (its deposit Safes are derived here from it, and swept only into this Safe)\n", e.Descriptor)
	}
	for _, t := range e.Tokens {
		fmt.Fprintf(w, "  token swept from the deposit Safes: %s (%d decimals) at %s\n", t.Symbol, t.Decimals, t.Contract)
	}
}

// listSafes is `kinko cold wallets` on a registry of Safes.
func listSafes(w io.Writer, path string, reg *ethcold.Registry) {
	fmt.Fprintf(w, "%d Safe(s) registered in %s\n", len(reg.Safes), path)
	for i := range reg.Safes {
		e := &reg.Safes[i]
		showSafe(w, e, common.HexToAddress(e.Owner))
		if e.Destination {
			fmt.Fprintln(w, "  a destination: this machine holds none of its keys")
		} else if n := len(e.Signed); n > 0 {
			s := e.Signed[n-1]
			fmt.Fprintf(w, "  last signed here: nonce %d, SafeTx %s (ceremony %s)\n", s.Nonce, s.Hash, s.ID)
		}
	}
}

// safeRegister is `kinko cold register --safe`.
type safeRegister struct {
	addr, multiSend, descriptor string
	chainID                     uint64
	owners                      []string
	threshold                   int
	nonce                       uint64
	tokens                      []string
}

func (s *safeRegister) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.addr, "safe", "", "register an Ethereum Safe at this address (instead of --descriptor)")
	cmd.Flags().Uint64Var(&s.chainID, "chain-id", 0, "the Safe's chain id (1 for mainnet)")
	cmd.Flags().StringSliceVar(&s.owners, "owners", nil, "the Safe's owners, comma-separated 0x addresses")
	cmd.Flags().IntVar(&s.threshold, "threshold", 0, "how many owners must sign")
	cmd.Flags().StringVar(&s.multiSend, "multisend", "", "the MultiSendCallOnly 1.4.1 to pin: the only DELEGATECALL signed for this Safe (default: none)")
	cmd.Flags().Uint64Var(&s.nonce, "nonce", 0, "the Safe's next nonce now (0 for a new Safe): this machine signs from there on")
	cmd.Flags().StringArrayVar(&s.tokens, "token", nil, "SYMBOL:DECIMALS:0xCONTRACT: an ERC-20 whose balances at the deposit Safes this machine sweeps into this Safe (with --safe-descriptor; again for each)")
	cmd.Flags().StringVar(&s.descriptor, "safe-descriptor", "", "a cold customer Safe's custody wallet descriptor (safe-1.4.1(...)): this machine then derives the wallet's deposit Safes and signs their sweeps into this Safe")
}

func (s *safeRegister) run(cmd *cobra.Command, regFile, name, kind, netName, keyFile, passFile string, destination, yes bool) error {
	if s.chainID == 0 || len(s.owners) == 0 || s.threshold == 0 {
		return fmt.Errorf("a Safe needs --chain-id, --owners and --threshold: nothing registered")
	}
	for _, f := range []string{s.addr, s.multiSend} {
		if _, err := ethcold.ParseAddress(f); f != "" && err != nil {
			return fmt.Errorf("%w: nothing registered", err)
		}
	}
	for _, o := range s.owners {
		if _, err := ethcold.ParseAddress(o); err != nil {
			return fmt.Errorf("owner: %w: nothing registered", err)
		}
	}
	reg, err := ethcold.LoadRegistry(regFile)
	if errors.Is(err, os.ErrNotExist) {
		reg, err = ethcold.NewRegistry(), nil
	}
	if err != nil {
		return err
	}
	stdin := bufio.NewReader(cmd.InOrStdin())
	key, err := loadEthKey(cmd, stdin, netName, keyFile, passFile)
	if err != nil {
		return err
	}
	me := crypto.PubkeyToAddress(key.PublicKey)
	e := ethcold.Entry{Name: name, Kind: kind, ChainID: s.chainID, Address: s.addr, Owners: s.owners, Threshold: s.threshold,
		MultiSend: s.multiSend, Destination: destination, NextNonce: s.nonce, Descriptor: s.descriptor}
	for _, t := range s.tokens {
		tok, err := ethcold.ParseToken(t)
		if err != nil {
			return fmt.Errorf("--token: %w: nothing registered", err)
		}
		e.Tokens = append(e.Tokens, tok)
	}
	if destination {
		e.NextNonce = 0
	}
	added, err := reg.Register(e, me)
	if err != nil {
		return fmt.Errorf("%w: nothing registered", err)
	}
	w := cmd.OutOrStdout()
	if !added {
		fmt.Fprintf(w, "Safe %s (%s) is already registered in %s with this setup: nothing changed\n", name, kind, regFile)
		return nil
	}
	fmt.Fprintln(w, "register this Safe on this machine:")
	showSafe(w, &reg.Safes[len(reg.Safes)-1], me)
	if destination {
		fmt.Fprintln(w, "  as a DESTINATION: this machine holds none of its keys; calls paying it will be shown as ours, it is never signed for here")
	}
	if !yes && !confirm(w, stdin, "register this Safe") {
		return fmt.Errorf("not confirmed: nothing registered")
	}
	if err := reg.Save(regFile); err != nil {
		return err
	}
	fmt.Fprintf(w, "registered %s (%s) in %s (%d Safe(s))\n", name, kind, regFile, len(reg.Safes))
	return nil
}

// signSafe is `kinko cold sign` on a Safe request: the EIP-712 hash
// recomputed here, the calls decoded strictly and shown from this
// machine's registry, the nonce held against what this machine signed,
// the operator's yes, and only then a signature.
func signSafe(cmd *cobra.Command, regFile, reqFile, out, netName, keyFile, passFile string, expect *uint64, yes bool) error {
	reg, err := loadSafeRegistry(regFile)
	if err != nil {
		return err
	}
	req, err := ethcold.ReadRequest(reqFile)
	if err != nil {
		return fmt.Errorf("%w: not signed, nothing written", err)
	}
	tx, err := req.Resolve()
	if err != nil {
		return fmt.Errorf("request %s: %w: not signed, nothing written", reqFile, err)
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists: not signed, nothing written", out)
	}
	var desc *ethcold.Description
	if req.Deposit != nil {
		desc = ethcold.DescribeDeposit(reg, tx, req.Deposit)
	} else {
		desc = ethcold.Describe(reg, tx)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "ceremony %s (%s)\n%s", req.ID, req.Purpose, desc.Text)
	refused := desc.Refused
	switch {
	case desc.Entry != nil && req.Deposit != nil:
		if expect != nil {
			refused = append(refused, fmt.Errorf("%w: --nonce is for the registered Safe's nonces, not a deposit Safe's", ethcold.ErrNonce))
		} else if err := desc.Entry.CheckDepositNonce(req.Deposit.Index, tx.SafeTx.Nonce, tx.Hash); err != nil {
			refused = append(refused, err)
		}
	case desc.Entry != nil:
		if err := desc.Entry.CheckNonce(tx.SafeTx.Nonce, tx.Hash, expect); err != nil {
			refused = append(refused, err)
		}
	}
	if err := errors.Join(refused...); err != nil {
		return fmt.Errorf("%w\nnot signed, nothing written", err)
	}
	stdin := bufio.NewReader(cmd.InOrStdin())
	key, err := loadEthKey(cmd, stdin, netName, keyFile, passFile)
	if err != nil {
		return err
	}
	me := crypto.PubkeyToAddress(key.PublicKey)
	if me.Hex() != desc.Entry.Owner {
		return fmt.Errorf("this key's owner address %s is not the owner %s registered for %s: not signed, nothing written", me.Hex(), desc.Entry.Owner, desc.Entry.Label())
	}
	if !yes && !confirm(w, stdin, "sign this Safe transaction") {
		return fmt.Errorf("not confirmed: nothing signed")
	}
	sig, err := safe.Sign(tx.Hash, key)
	if err != nil {
		return err
	}
	// What this machine signed at this nonce is kept before the
	// signature leaves: never two SafeTxs at one nonce from this key.
	if req.Deposit != nil {
		desc.Entry.RecordDepositSigned(req.Deposit.Index, tx.SafeTx.Nonce.Uint64(), tx.Hash, req.ID)
	} else {
		desc.Entry.RecordSigned(tx.SafeTx.Nonce.Uint64(), tx.Hash, req.ID)
	}
	if err := reg.Save(regFile); err != nil {
		return fmt.Errorf("recording the signed nonce in %s: %w: nothing written", regFile, err)
	}
	if err := ethcold.WriteNew(out, ethcold.NewSignatureFile(req.ID, tx, sig), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "signed SafeTx %s as owner %s; written to %s\n", tx.Hash.Hex(), me.Hex(), out)
	return nil
}

// combineSafe is `kinko cold combine --request` on owners' signature
// files.
func combineSafe(cmd *cobra.Command, reqFile, out string, files []string) error {
	req, err := ethcold.ReadRequest(reqFile)
	if err != nil {
		return err
	}
	var sigs []*ethcold.SignatureFile
	for _, f := range files {
		s, err := ethcold.ReadSignatureFile(f)
		if err != nil {
			return fmt.Errorf("%w: nothing written", err)
		}
		sigs = append(sigs, s)
	}
	signed, err := ethcold.Combine(req, sigs)
	if err != nil {
		return fmt.Errorf("%w: nothing written", err)
	}
	if err := ethcold.WriteNew(out, signed, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "combined %d signature(s) of SafeTx %s, sorted by owner (%s); written to %s\n", len(sigs), req.SafeTxHash, strings.Join(signed.Owners, ", "), out)
	return nil
}

// readGasKey reads a gas account's key: a file holding one secp256k1
// private key in hex.
func readGasKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"))
	if err != nil {
		return nil, fmt.Errorf("%s is not a hex secp256k1 private key", path)
	}
	return k, nil
}

func newColdSubmitCmd() *cobra.Command {
	var signedFile, rpcURL, gasKey string
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "send a combined Safe transaction (kinko cold combine --request) with execTransaction from a gas account",
		Long: "Checks the combined signatures against the Safe's owners and threshold on the node, and the SafeTx's\n" +
			"nonce against the Safe's, before sending execTransaction from the gas account (which pays the gas; the Safe\n" +
			"refunds nothing). It succeeds only if the Safe logged ExecutionSuccess for the hash computed here.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, tx, sigs, err := ethcold.ReadSignedFile(signedFile)
			if err != nil {
				return fmt.Errorf("%w: nothing sent", err)
			}
			key, err := readGasKey(gasKey)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			c, err := eth.Dial(ctx, rpcURL)
			if err != nil {
				return err
			}
			defer c.Close()
			if c.ChainID().Cmp(tx.ChainID) != 0 {
				return fmt.Errorf("the node is on chain %s, the SafeTx is for chain %s: nothing sent", c.ChainID(), tx.ChainID)
			}
			if s.Request.Deposit != nil {
				if err := deployDeposit(ctx, cmd.OutOrStdout(), c, key, tx, sigs, s.Request.Deposit); err != nil {
					return err
				}
			}
			cfg, err := safe.Owners(ctx, c, tx.Safe)
			if err != nil {
				return fmt.Errorf("reading the Safe %s: %w: nothing sent", tx.Safe.Hex(), err)
			}
			if _, err := safe.VerifySignatures(tx.Hash, sigs, cfg.Owners, cfg.Threshold); err != nil {
				return fmt.Errorf("the signatures of %s are not %d of the Safe's owners' over SafeTx %s: %w: nothing sent", signedFile, cfg.Threshold, tx.Hash.Hex(), err)
			}
			n, err := safe.Nonce(ctx, c, tx.Safe)
			if err != nil {
				return err
			}
			if n.Cmp(tx.SafeTx.Nonce) != 0 {
				return fmt.Errorf("the Safe's nonce is %s and the SafeTx's %s: executed already, replaced, or not its turn: nothing sent", n, tx.SafeTx.Nonce)
			}
			r, err := safe.Execute(ctx, c, key, tx.ChainID, tx.Safe, tx.SafeTx, sigs, 0)
			if err != nil {
				return err
			}
			fee := eth.Fee(r)
			fmt.Fprintf(cmd.OutOrStdout(), "executed SafeTx %s of ceremony %s in transaction %s (block %s, gas %d, fee %s wei paid by %s)\n",
				tx.Hash.Hex(), s.Request.ID, r.TxHash.Hex(), r.BlockNumber, r.GasUsed, fee, crypto.PubkeyToAddress(key.PublicKey).Hex())
			return nil
		},
	}
	cmd.Flags().StringVar(&signedFile, "signed", "", "the combined Safe transaction (kinko cold combine --request)")
	cmd.Flags().StringVar(&rpcURL, "eth-rpc", "", "the Ethereum node's JSON-RPC URL")
	cmd.Flags().StringVar(&gasKey, "gas-key", "", "file holding the gas account's private key in hex")
	for _, f := range []string{"signed", "eth-rpc", "gas-key"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

// deployDeposit deploys the deposit Safe of a sweep when its address has
// no code: createProxyWithNonce(singleton, setup of the descriptor's
// owners and threshold, index) from the gas account, after checking that
// the descriptor and index derive the SafeTx's Safe and that the
// signatures are enough of the descriptor's owners' (so no gas is spent
// on a sweep that cannot execute). A proxy already there is left as it
// is (whoever deployed it, its code is the address's).
func deployDeposit(ctx context.Context, w io.Writer, c *eth.Client, key *ecdsa.PrivateKey, tx *ethcold.Tx, sigs []byte, ref *ethcold.DepositRef) error {
	d, err := ethwallet.Parse(ref.Descriptor)
	if err != nil {
		return fmt.Errorf("the request's deposit descriptor: %w: nothing sent", err)
	}
	if d.ChainID != tx.ChainID.Uint64() {
		return fmt.Errorf("the deposit descriptor is of chain %d, the SafeTx of %s: nothing sent", d.ChainID, tx.ChainID)
	}
	p, err := book.Predictor(safe.ProxyArtifacts(), d)
	if err != nil {
		return fmt.Errorf("%w: nothing sent", err)
	}
	if a := p.AddressIndex(uint64(ref.Index)); a != tx.Safe {
		return fmt.Errorf("deposit %d of the request's descriptor is %s, not the SafeTx's Safe %s: nothing sent", ref.Index, a.Hex(), tx.Safe.Hex())
	}
	code, err := c.Code(ctx, tx.Safe)
	if err != nil {
		return err
	}
	if len(code) > 0 {
		return nil
	}
	cfg := safe.Config{Threshold: d.Threshold}
	for _, o := range d.Owners {
		cfg.Owners = append(cfg.Owners, common.Address(o))
	}
	if _, err := safe.VerifySignatures(tx.Hash, sigs, cfg.Owners, cfg.Threshold); err != nil {
		return fmt.Errorf("the signatures are not %d of the deposit Safe's owners' over SafeTx %s: %w: nothing sent", cfg.Threshold, tx.Hash.Hex(), err)
	}
	dep := safe.NewDeployment(safe.ProxyArtifacts(), safe.L2, tx.ChainID, safe.Addresses{Singleton: common.Address(d.Singleton),
		ProxyFactory: common.Address(d.Factory), FallbackHandler: common.Address(d.Fallback)})
	if fc, err := c.Code(ctx, dep.ProxyFactory); err != nil {
		return err
	} else if len(fc) == 0 {
		return fmt.Errorf("no SafeProxyFactory at %s on chain %s: nothing sent", dep.ProxyFactory.Hex(), tx.ChainID)
	}
	init, err := dep.Initializer(cfg)
	if err != nil {
		return err
	}
	got, r, err := dep.CreateProxy(ctx, c, key, init, new(big.Int).SetUint64(uint64(ref.Index)))
	if err != nil {
		return fmt.Errorf("deploying deposit Safe %d: %w", ref.Index, err)
	}
	if got != tx.Safe {
		return fmt.Errorf("the factory deployed %s, not the deposit Safe %s: nothing executed", got.Hex(), tx.Safe.Hex())
	}
	fmt.Fprintf(w, "deployed deposit Safe %d at %s in transaction %s (block %s, gas %d, fee %s wei)\n", ref.Index, got.Hex(), r.TxHash.Hex(), r.BlockNumber, r.GasUsed, eth.Fee(r))
	return nil
}

// parsePay reads --pay ADDRESS=ETHER.
func parsePay(s string) (safe.Call, error) {
	a, amt, ok := strings.Cut(s, "=")
	if !ok {
		return safe.Call{}, fmt.Errorf("--pay %q: ADDRESS=ETHER", s)
	}
	to, err := ethcold.ParseAddress(a)
	if err != nil {
		return safe.Call{}, fmt.Errorf("--pay: %w", err)
	}
	wei, err := ethcold.ParseEther(amt)
	if err != nil {
		return safe.Call{}, fmt.Errorf("--pay: %w", err)
	}
	if wei.Sign() == 0 {
		return safe.Call{}, fmt.Errorf("--pay %q pays nothing", s)
	}
	return safe.Call{To: to, Value: wei}, nil
}

// parseDest reads --dest ADDRESS=WALLET.
func parseDest(s string) (common.Address, uint32, error) {
	a, id, ok := strings.Cut(s, "=")
	if !ok {
		return common.Address{}, 0, fmt.Errorf("--dest %q: ADDRESS=WALLET", s)
	}
	to, err := ethcold.ParseAddress(a)
	if err != nil {
		return common.Address{}, 0, fmt.Errorf("--dest: %w", err)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil || n == 0 {
		return common.Address{}, 0, fmt.Errorf("--dest %q: the wallet is a custody wallet id", s)
	}
	return to, uint32(n), nil
}

func newCeremonySafeCmd() *cobra.Command {
	var rpcURL, safeAddr, multiSend, purpose, id, out string
	var pays, dests []string
	var wallet uint32
	var unjournaled bool
	var f coreFlags
	cmd := &cobra.Command{
		Use:   "safe",
		Short: "prepare a refill or sweep from a cold Safe (plain Ether transfers at the Safe's nonce read from the node): the core journals it, then the request for the offline signers is written",
		Long: "The SafeTx is built at the Safe's nonce read from the node and journaled in the core (POST /v1/ceremonies, purpose safe, as\n" +
			"the operator signed in) before the request file is written: --wallet names the paying Safe wallet, one --dest ADDRESS=WALLET\n" +
			"each paid address's custody wallet (the core checks the SafeTx's hash and calls, the wallets' kinds, asset and chain; the\n" +
			"watcher of Safe executions checks each address is the Safe it pins for that wallet). A journaled ceremony's execution halts\n" +
			"nothing and moves the amounts between the wallets' ledger accounts. --unjournaled writes the request only: its execution then\n" +
			"halts ETH withdrawals.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := ethcold.ParseAddress(safeAddr)
			if err != nil {
				return fmt.Errorf("--safe: %w", err)
			}
			var calls []safe.Call
			total := new(big.Int)
			for _, p := range pays {
				c, err := parsePay(p)
				if err != nil {
					return err
				}
				calls = append(calls, c)
				total.Add(total, c.Value)
			}
			if len(calls) == 0 {
				return fmt.Errorf("give --pay ADDRESS=ETHER: what the Safe pays")
			}
			walletOf := map[common.Address]uint32{}
			for _, d := range dests {
				a, w, err := parseDest(d)
				if err != nil {
					return err
				}
				if _, dup := walletOf[a]; dup {
					return fmt.Errorf("--dest %s given twice", a.Hex())
				}
				walletOf[a] = w
			}
			if unjournaled {
				if wallet != 0 || len(dests) != 0 || f.operator != "" {
					return fmt.Errorf("--unjournaled journals nothing: no --wallet, --dest or --operator")
				}
			} else {
				if wallet == 0 {
					return fmt.Errorf("give --wallet: the custody wallet id of the paying Safe (or --unjournaled)")
				}
				for _, c := range calls {
					if _, ok := walletOf[c.To]; !ok {
						return fmt.Errorf("--pay %s: give --dest %s=WALLET, the custody wallet it is", c.To.Hex(), c.To.Hex())
					}
				}
				if len(walletOf) != len(calls) {
					return fmt.Errorf("%d --dest for %d --pay: one each", len(walletOf), len(calls))
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			c, err := eth.Dial(ctx, rpcURL)
			if err != nil {
				return err
			}
			defer c.Close()
			if code, err := c.Code(ctx, from); err != nil {
				return err
			} else if len(code) == 0 {
				return fmt.Errorf("no contract at %s on chain %s: not a deployed Safe", from.Hex(), c.ChainID())
			}
			nonce, err := safe.Nonce(ctx, c, from)
			if err != nil {
				return fmt.Errorf("reading the nonce of %s: %w", from.Hex(), err)
			}
			var tx *safe.SafeTx
			if len(calls) == 1 {
				tx = safe.Transfer(calls[0].To, calls[0].Value, nonce)
			} else {
				ms, err := ethcold.ParseAddress(multiSend)
				if err != nil {
					return fmt.Errorf("several --pay are one batch through the MultiSendCallOnly: --multisend: %w", err)
				}
				if tx, err = safe.Batch(ms, calls, nonce); err != nil {
					return err
				}
			}
			req, err := ethcold.NewRequest(id, purpose, c.ChainID(), from, tx)
			if err != nil {
				return err
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("%s exists: nothing journaled or written", out)
			}
			note := " (NOT journaled: its execution halts ETH withdrawals)"
			if !unjournaled {
				value := new(big.Int) // a batch's SafeTx carries no value
				if tx.Value != nil {
					value.Set(tx.Value)
				}
				sr := &api.SafeCeremonyRequest{Purpose: purpose, Wallet: wallet, SafeTxHash: req.SafeTxHash,
					SafeTx: custody.SafeTx{ChainID: c.ChainID().Uint64(), Safe: from.Hex(), To: tx.To.Hex(), Value: value.String(),
						Data: "0x" + hex.EncodeToString(tx.Data), Operation: uint8(tx.Operation), Nonce: tx.Nonce.Uint64()}}
				for _, cl := range calls {
					sr.Pays = append(sr.Pays, api.SafePayRequest{Wallet: walletOf[cl.To], Address: cl.To.Hex(), Amount: cl.Value.String()})
				}
				oc, err := f.client(cmd.Context())
				if err != nil {
					return err
				}
				var v api.CeremonyView
				if err := oc.Post(cmd.Context(), "/v1/ceremonies", api.CeremonyRequest{Purpose: "safe", ID: id, Safe: sr}, &v, http.StatusCreated); err != nil {
					return fmt.Errorf("the core did not journal ceremony %s: %w (no request written)", id, err)
				}
				note = " (journaled by " + oc.Operator + ")"
			}
			if err := ethcold.WriteNew(out, req, 0o644); err != nil {
				return fmt.Errorf("ceremony %s: the request is not written: %w", id, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s in %d call(s) from Safe %s at nonce %s on chain %s (SafeTx %s)%s; request written to %s\n",
				purpose, id, ethcold.FormatEther(total), len(calls), from.Hex(), nonce, c.ChainID(), req.SafeTxHash, note, out)
			return nil
		},
	}
	f.addOptional(cmd)
	cmd.Flags().Uint32Var(&wallet, "wallet", 0, "the custody wallet id of the paying Safe (journaled)")
	cmd.Flags().StringArrayVar(&dests, "dest", nil, "ADDRESS=WALLET: the custody wallet id of a paid address (one for each --pay)")
	cmd.Flags().BoolVar(&unjournaled, "unjournaled", false, "write the request without journaling it in the core (its execution then halts ETH withdrawals)")
	cmd.Flags().StringVar(&rpcURL, "eth-rpc", "", "the Ethereum node's JSON-RPC URL")
	cmd.Flags().StringVar(&safeAddr, "safe", "", "the cold Safe that pays")
	cmd.Flags().StringArrayVar(&pays, "pay", nil, "ADDRESS=ETHER paid by the Safe (again for a batch through --multisend)")
	cmd.Flags().StringVar(&multiSend, "multisend", "", "the MultiSendCallOnly of a batch")
	cmd.Flags().StringVar(&purpose, "purpose", ethcold.Refill, "refill (cold Safe to hot Safe) or sweep (out of a cold Safe to other wallets of ours)")
	cmd.Flags().StringVar(&id, "id", "", "ceremony id")
	cmd.Flags().StringVar(&out, "out", "safe-ceremony.json", "request file to write")
	for _, f := range []string{"eth-rpc", "safe", "id"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newKeysEthAddressCmd() *cobra.Command {
	var keyFile, passFile, netName string
	cmd := &cobra.Command{
		Use:   "eth-address",
		Short: "print the Ethereum owner address of a key file (BIP-44 " + keys.EthereumPath + "), to make it a Safe owner",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := loadEthKey(cmd, bufio.NewReader(cmd.InOrStdin()), netName, keyFile, passFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", crypto.PubkeyToAddress(k.PublicKey).Hex(), keys.EthereumPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "key file")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (default: standard input)")
	cmd.Flags().StringVar(&netName, "net", "regtest", "the key file's network")
	cmd.MarkFlagRequired("key")
	return cmd
}
