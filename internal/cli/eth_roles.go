package cli

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/spf13/cobra"

	"kinko/internal/alert"
	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/signer"
	"kinko/internal/watch"
	"kinko/internal/withdraw"
)

// The Ethereum side of the long-running roles (docs/ethereum.md): the
// co-signer's Ethereum key and node, the hot signer of a Safe, and the
// watcher of Ether deposits and Safe executions. Every address, the chain
// id and the MultiSendCallOnly come from the role's own flags or
// configuration file (roots of trust), never from the core.

// ethDialTimeout bounds dialing a role's Ethereum node at its start.
const ethDialTimeout = 30 * time.Second

// parseEthFlagAddress reads an address flag: 0x and 40 hex digits, in its
// EIP-55 checksum form when it has mixed case, not zero.
func parseEthFlagAddress(flag, s string) (common.Address, error) {
	if !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("--%s %q: not an Ethereum address (0x and 40 hex digits)", flag, s)
	}
	a := common.HexToAddress(s)
	if s != strings.ToLower(s) && s != "0x"+strings.ToUpper(s[2:]) && s != a.Hex() {
		return common.Address{}, fmt.Errorf("--%s %s: wrong EIP-55 checksum (%s)", flag, s, a.Hex())
	}
	if a == (common.Address{}) {
		return common.Address{}, fmt.Errorf("--%s: the zero address", flag)
	}
	return a, nil
}

// dialEth dials an Ethereum node's JSON-RPC and checks its chain id when
// one is pinned (chainID > 0).
func dialEth(ctx context.Context, flag, url string, chainID uint64) (*eth.Client, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "ws://") && !strings.HasPrefix(url, "wss://") {
		return nil, fmt.Errorf("--%s %q: an http(s):// or ws(s):// URL of the node's JSON-RPC", flag, url)
	}
	dctx, cancel := context.WithTimeout(ctx, ethDialTimeout)
	defer cancel()
	c, err := eth.Dial(dctx, url)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if chainID > 0 && c.ChainID().Cmp(new(big.Int).SetUint64(chainID)) != 0 {
		c.Close()
		return nil, fmt.Errorf("--%s %s is on chain %s, not the pinned --chain-id %d", flag, url, c.ChainID(), chainID)
	}
	return c, nil
}

// ethCosignerFlags give the co-signer its Ethereum key and node.
type ethCosignerFlags struct{ node, key, passFile string }

func (e *ethCosignerFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&e.node, "eth-node", "", "with --eth-key: the co-signer's own Ethereum node (JSON-RPC URL), from which it reads the pinned Safes' nonces, owners and MultiSendCallOnly code; serves POST /cosign/safetx")
	f.StringVar(&e.key, "eth-key", "", "with --eth-node: key file whose Ethereum key (BIP-44 m/44'/60'/0'/0/0, kinko keys eth-address) is the co-signer's owner of the pinned hot Safes")
	f.StringVar(&e.passFile, "eth-passphrase-file", "", "passphrase file of --eth-key (default: --passphrase-file)")
}

// check reads the flags, before anything else is read or dialed.
func (e *ethCosignerFlags) check() error {
	if (e.node == "") != (e.key == "") {
		return errors.New("--eth-node and --eth-key go together: the co-signer's Ethereum node and its owner key")
	}
	if e.node != "" && !strings.HasPrefix(e.node, "http://") && !strings.HasPrefix(e.node, "https://") && !strings.HasPrefix(e.node, "ws://") && !strings.HasPrefix(e.node, "wss://") {
		return fmt.Errorf("--eth-node %q: an http(s):// or ws(s):// URL of the node's JSON-RPC", e.node)
	}
	return nil
}

// open returns the co-signer's Ethereum key and node, or nil for both
// when the co-signer runs without Ethereum; it refuses a policy that pins
// no hot Safe while Ethereum is asked for.
func (e *ethCosignerFlags) open(cmd *cobra.Command, in *bufio.Reader, netName, passFile string, pol *cosigner.Policy, log *slog.Logger) (*ecdsa.PrivateKey, *eth.Client, error) {
	if e.node == "" && e.key == "" {
		if len(pol.Safes) > 0 {
			log.Warn("the policy pins Safes but no --eth-node and --eth-key are given: every SafeTx is refused")
		}
		return nil, nil, nil
	}
	if err := e.check(); err != nil {
		return nil, nil, err
	}
	hot := false
	for _, s := range pol.Safes {
		hot = hot || s.Kind == custody.HotCustomer.String()
	}
	if !hot {
		return nil, nil, errors.New("--eth-node given but the policy pins no hot-customer Safe (\"safes\") to co-sign for")
	}
	if e.passFile == "" {
		e.passFile = passFile
	}
	key, err := loadEthKey(cmd, in, netName, e.key, e.passFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--eth-key %s: %w", e.key, err)
	}
	node, err := dialEth(cmd.Context(), "eth-node", e.node, 0)
	if err != nil {
		return nil, nil, err
	}
	return key, node, nil
}

// verify checks the pinned Safes on the co-signer's node before it
// serves: the co-signer refuses to start when they are not as pinned.
func (e *ethCosignerFlags) verify(ctx context.Context, cs *cosigner.Cosigner) error {
	art, err := safe.LoadInstalled()
	if err != nil {
		return err
	}
	vctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cs.VerifySafes(vctx, art); err != nil {
		return fmt.Errorf("the pinned Safes on --eth-node %s: %w: not starting", e.node, err)
	}
	return nil
}

// ethSignerFlags make the hot signer the signer of one Safe.
type ethSignerFlags struct {
	node, safe, multiSend, gasKey, maxFee string
	chainID, gasLimit                     uint64
	maxBatch                              int
}

func (e *ethSignerFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&e.node, "eth-node", "", "run as the hot signer of a Safe on Ethereum: the node's JSON-RPC URL (then --safe, --chain-id, --multisend and --gas-key are needed, --key's Ethereum key is hot owner key #1, and --asset defaults to ETH)")
	f.StringVar(&e.safe, "safe", "", "with --eth-node: the hot Safe's address (pinned here, never read from the core)")
	f.Uint64Var(&e.chainID, "chain-id", 0, "with --eth-node: the Safe's chain (EIP-155); the node must be on it")
	f.StringVar(&e.multiSend, "multisend", "", "with --eth-node: the MultiSendCallOnly 1.4.1 the batches go through (the one the co-signer pins)")
	f.StringVar(&e.gasKey, "gas-key", "", "with --eth-node: file holding the house gas account's private key in hex; it sends execTransaction and pays its gas")
	f.Uint64Var(&e.gasLimit, "gas-limit", 500_000, "with --eth-node: gas limit of each execTransaction, told to the co-signer")
	f.StringVar(&e.maxFee, "max-fee-per-gas", "30000000000", "with --eth-node: fee cap per gas of each execTransaction, in wei (decimal); the co-signer counts gas limit × this as the fee")
	f.IntVar(&e.maxBatch, "max-batch", withdraw.MaxBatchOutputs, "with --eth-node: most withdrawals in one SafeTx")
}

// check reads the flags, before anything else is read or dialed.
func (e *ethSignerFlags) check() (sa, ms common.Address, fee *big.Int, err error) {
	if e.safe == "" || e.multiSend == "" || e.gasKey == "" || e.chainID == 0 {
		return sa, ms, nil, errors.New("--eth-node needs --safe, --chain-id, --multisend and --gas-key")
	}
	if sa, err = parseEthFlagAddress("safe", e.safe); err != nil {
		return
	}
	if ms, err = parseEthFlagAddress("multisend", e.multiSend); err != nil {
		return
	}
	if sa == ms {
		return sa, ms, nil, errors.New("--multisend is the --safe's own address")
	}
	fee, ok := new(big.Int).SetString(e.maxFee, 10)
	if !ok || fee.Sign() <= 0 || fee.BitLen() > 256 || strings.HasPrefix(e.maxFee, "0") || strings.HasPrefix(e.maxFee, "+") {
		return sa, ms, nil, fmt.Errorf("--max-fee-per-gas %q: a positive whole number of wei", e.maxFee)
	}
	if e.gasLimit < 21_000 || e.gasLimit > 30_000_000 {
		return sa, ms, nil, fmt.Errorf("--gas-limit %d: 21000 to 30000000", e.gasLimit)
	}
	if e.maxBatch < 1 || e.maxBatch > withdraw.MaxBatchOutputs {
		return sa, ms, nil, fmt.Errorf("--max-batch %d: 1 to %d", e.maxBatch, withdraw.MaxBatchOutputs)
	}
	return sa, ms, fee, nil
}

// signer returns the Ether hot signer these flags describe, and a
// function closing its node.
func (e *ethSignerFlags) signer(cmd *cobra.Command, in *bufio.Reader, netName, keyFile, passFile, asset string, backend signer.Backend, co signer.SafeCoSigner, log *slog.Logger) (*signer.EthSigner, func(), error) {
	sa, ms, fee, err := e.check()
	if err != nil {
		return nil, nil, err
	}
	gas, err := readGasKey(e.gasKey)
	if err != nil {
		return nil, nil, fmt.Errorf("--gas-key: %w", err)
	}
	key, err := loadEthKey(cmd, in, netName, keyFile, passFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--key %s: %w", keyFile, err)
	}
	if crypto.PubkeyToAddress(key.PublicKey) == crypto.PubkeyToAddress(gas.PublicKey) {
		return nil, nil, errors.New("--gas-key is hot owner key #1 (--key's Ethereum key): the gas account must be another key")
	}
	node, err := dialEth(cmd.Context(), "eth-node", e.node, e.chainID)
	if err != nil {
		return nil, nil, err
	}
	s, err := signer.NewEth(signer.EthConfig{Backend: backend, Node: node, Asset: asset, ChainID: e.chainID, Safe: sa, MultiSend: ms,
		Key: key, Gas: gas, CoSigner: co, GasLimit: e.gasLimit, MaxFeePerGas: fee, MaxBatch: e.maxBatch, Logger: log})
	if err != nil {
		node.Close()
		return nil, nil, err
	}
	return s, node.Close, nil
}

// ethWatchFlags make the watcher follow Ether deposits and the Safes'
// executions.
type ethWatchFlags struct {
	node, ws, hot, multiSend string
	cold                     []string
	chainID                  uint64
	poll                     time.Duration
	noTraces                 bool
}

func (e *ethWatchFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&e.noTraces, "eth-no-traces", false, "with --eth-node: do not read call traces (for a node without the debug API): Ether a contract sends to a deposit address (an internal call: a smart-contract wallet, a batched withdrawal) is then never credited, and the reconciliation halts ETH withdrawals on it")
	f.StringVar(&e.node, "eth-node", "", "watch Ethereum: the node's JSON-RPC URL (then --chain-id, --hot-safe, --cold-safe and --multisend are needed, and --asset defaults to ETH)")
	f.StringVar(&e.ws, "eth-ws", "", "with --eth-node: the node's WebSocket URL, to halt on an unexplained execTransaction of a pinned Safe while it is in the node's pool (default: blocks only)")
	f.Uint64Var(&e.chainID, "chain-id", 0, "with --eth-node: the chain (EIP-155) the node and every Safe wallet of the asset must be on")
	f.StringVar(&e.hot, "hot-safe", "", "with --eth-node: the hot Safe's address, whose every execution must be a journaled batch")
	f.StringArrayVar(&e.cold, "cold-safe", nil, "with --eth-node: a cold Safe's address, whose every execution must be a journaled batch (repeatable)")
	f.StringVar(&e.multiSend, "multisend", "", "with --eth-node: the pinned MultiSendCallOnly, to read a batch's calls when measuring what an execution took")
	f.DurationVar(&e.poll, "eth-poll", time.Second, "with --eth-node: how often the node and the core are read")
}

// check reads the flags, before anything else is read or dialed: the
// Safes watched (the hot one first) and the MultiSendCallOnly.
func (e *ethWatchFlags) check() ([]watch.WatchedSafe, common.Address, error) {
	if e.chainID == 0 || e.hot == "" || len(e.cold) == 0 || e.multiSend == "" {
		return nil, common.Address{}, errors.New("--eth-node needs --chain-id, --hot-safe, at least one --cold-safe and --multisend")
	}
	if e.poll <= 0 {
		return nil, common.Address{}, fmt.Errorf("--eth-poll %v: a positive duration", e.poll)
	}
	ms, err := parseEthFlagAddress("multisend", e.multiSend)
	if err != nil {
		return nil, ms, err
	}
	hot, err := parseEthFlagAddress("hot-safe", e.hot)
	if err != nil {
		return nil, ms, err
	}
	safes := []watch.WatchedSafe{{Name: "hot", Address: hot, Kind: custody.HotCustomer}}
	seen := map[common.Address]bool{hot: true, ms: true}
	for i, s := range e.cold {
		a, err := parseEthFlagAddress("cold-safe", s)
		if err != nil {
			return nil, ms, err
		}
		if seen[a] {
			return nil, ms, fmt.Errorf("--cold-safe %s is given twice, or is the hot Safe or the MultiSendCallOnly", s)
		}
		seen[a] = true
		safes = append(safes, watch.WatchedSafe{Name: fmt.Sprintf("cold-%d", i+1), Address: a, Kind: custody.ColdCustomer})
	}
	return safes, ms, nil
}

// run watches the Ether deposits of the asset's Safe wallets and every
// execution of the pinned Safes until ctx ends (in the node's pool too
// with --eth-ws): an execution no journaled batch holds halts the
// co-signers first (halt), then the asset's withdrawals in the core, with
// an incident. At every block it reconciles each wallet's Safes and
// deposit addresses with its ledger account (watch.EthRecon: a difference
// beyond tolerance wei halts) and checks the hot cap and house backing.
func (e *ethWatchFlags) run(ctx context.Context, out io.Writer, log *slog.Logger, remote *watch.Remote, code, coreURL string, ncosigners int,
	confs, start int32, gap uint32, tolerance int64, send func(alert.Alert), halt func(asset, tx, why string)) error {
	safes, ms, err := e.check()
	if err != nil {
		return err
	}
	if tolerance < 0 {
		return fmt.Errorf("--tolerance %d: not negative", tolerance)
	}
	hot := safes[0].Address
	node, err := dialEth(ctx, "eth-node", e.node, e.chainID)
	if err != nil {
		return err
	}
	defer node.Close()
	for _, s := range safes {
		c, err := node.Code(ctx, s.Address)
		if err != nil {
			return fmt.Errorf("--eth-node: the %s Safe %s: %w", s.Kind, s.Address, err)
		}
		if len(c) == 0 {
			return fmt.Errorf("no contract at the %s Safe %s on chain %d", s.Kind, s.Address, e.chainID)
		}
	}
	var asset ledger.AssetID
	remote.Read(func(st *core.State) {
		if a, ok := st.Ledger.AssetByCode(code); ok {
			asset = a.ID
		}
	})
	if asset == 0 {
		return fmt.Errorf("--asset %s: no such asset in the journal", code)
	}
	art, err := safe.LoadInstalled()
	if err != nil {
		return err
	}
	if confs <= 0 {
		confs = watch.DefaultEtherConfirmations
	}
	backend := ethchain.New(node, e.ws, nil, ethchain.WithTraces(!e.noTraces))
	if e.noTraces {
		log.Warn("--eth-no-traces: Ether sent to deposit addresses by contracts (internal calls) is not credited; the reconciliation will see it as a difference and halt ETH withdrawals")
	}
	deps, err := watch.NewEtherDeposits(ctx, remote, backend, art, watch.EtherConfig{Asset: asset, ChainID: e.chainID,
		Confirmations: confs, StartHeight: start, Gap: gap, Logger: log})
	if err != nil {
		return err
	}
	startBlock := uint64(max(start, 1))
	if safes, err = watch.MatchWallets(ctx, remote, node, asset, safes); err != nil {
		return err
	}
	for _, s := range safes {
		if s.Wallet == 0 {
			log.Warn("no custody wallet describes this Safe's owners: its executions are watched, its balance reconciled nowhere", "safe", s.Address, "kind", s.Kind)
		}
	}
	exec, err := watch.NewEthExec(remote, node, watch.EthExecConfig{Asset: asset, Safes: safes, MultiSend: ms, StartBlock: startBlock, WSURL: e.ws, Logger: log,
		OnUnexplained: func(_ ledger.AssetID, h common.Hash, why string) { halt(code, h.Hex(), why) },
		Alert:         send})
	if err != nil {
		return err
	}
	// Each ERC-20 token listed on the chain has a deposit watcher of its
	// own asset, its backend following that contract alone.
	tokens := watch.NewTokenDeposits(remote, art, func(contract string) chain.Backend {
		return ethchain.New(node, "", []common.Address{common.HexToAddress(contract)})
	}, watch.EtherConfig{ChainID: e.chainID, Confirmations: confs, StartHeight: start, Gap: gap, Logger: log})
	recon, err := watch.NewEthRecon(remote, backend, node, art, watch.EthReconConfig{Asset: asset, ChainID: e.chainID, Safes: safes,
		Confirmations: confs, Tolerance: ledger.AmountOf(uint64(tolerance)), Deposits: deps, StartBlock: startBlock, Logger: log, Alert: send})
	if err != nil {
		return err
	}
	log.Info("watching", "asset", code, "node", e.node, "chain", e.chainID, "core", coreURL, "cosigners", ncosigners, "safes", len(safes))
	fmt.Fprintf(out, "watching %s on %s (chain %d): core %s, %d co-signer(s), hot Safe %s, %d cold Safe(s)\n", code, e.node, e.chainID, coreURL, ncosigners, hot.Hex(), len(e.cold))
	(&watch.EtherWatch{Deposits: deps, Exec: exec, Tokens: tokens, Recon: recon, Logger: log}).Run(ctx, e.poll)
	log.Info("stopping")
	return nil
}
