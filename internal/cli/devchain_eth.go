package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/devnet"
	"kinko/internal/core"
	"kinko/internal/demo"
)

// maxDevPayWei is the most one `kinko dev pay` sends on the Ethereum dev
// node: 1,000 ETH.
var maxDevPayWei = new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))

// devEthRoutes serve the Ethereum dev node's developer account as
// devChainRoutes serve btcd's wallet: POST /dev/eth/pay pays an address
// from it, POST /dev/eth/mine seals blocks (the node seals one only when a
// transaction is pending), both with the dev token.
func devEthRoutes(mux *http.ServeMux, e *demo.Eth, token string) {
	mux.HandleFunc("POST /dev/eth/pay", func(w http.ResponseWriter, r *http.Request) {
		if !devAuthorized(w, r, token) {
			return
		}
		var req DevPayRequest
		if !decodeDev(w, r, &req) {
			return
		}
		wei, ok := new(big.Int).SetString(req.Amount, 10)
		if !ok || wei.Sign() <= 0 || wei.Cmp(maxDevPayWei) > 0 || wei.String() != req.Amount {
			http.Error(w, fmt.Sprintf("amount must be a whole number of wei from 1 to %s (1,000 ETH)", maxDevPayWei), http.StatusBadRequest)
			return
		}
		if !common.IsHexAddress(req.Address) || len(req.Address) != 42 {
			http.Error(w, "address is not an Ethereum address (0x and 40 hex digits)", http.StatusBadRequest)
			return
		}
		to := common.HexToAddress(req.Address)
		if req.Address != to.Hex() && req.Address != "0x"+fmt.Sprintf("%x", to.Bytes()) {
			http.Error(w, "address has a wrong EIP-55 checksum", http.StatusBadRequest)
			return
		}
		rc, err := e.Node.Fund(r.Context(), to, wei)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"tx": rc.TxHash.Hex(), "block": rc.BlockNumber.Uint64()})
	})
	mux.HandleFunc("POST /dev/eth/mine", func(w http.ResponseWriter, r *http.Request) {
		req, ok := devMineRequest(w, r, token)
		if !ok {
			return
		}
		h, err := e.Node.Mine(r.Context(), req.Blocks)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"height": h})
	})
}

// printDevEth prints the Ethereum dev node, the Safes and the demo
// customers' ETH deposit addresses.
func printDevEth(w io.Writer, c *core.Core, e *demo.Eth, dir, addr string) {
	d := e.Deployment
	fmt.Fprintf(w, "\nEthereum dev node (geth --dev, chain id %s): RPC %s (WebSocket %s, no TLS), its chain in %s\n",
		d.ChainID, e.Node.HTTPURL(), e.Node.WSURL(), filepath.Join(e.Node.Dir(), "data"))
	fmt.Fprintf(w, "  Safe contracts %s (SafeL2 %s, factory %s, MultiSendCallOnly %s); hot Safe %s (wallet %d), owner keys in %s\n",
		"1.4.1", d.Singleton.Hex(), d.ProxyFactory.Hex(), d.MultiSendCallOnly.Hex(), e.HotSafe.Hex(), demo.HotEthWallet, e.KeyDir)
	fmt.Fprintf(w, "  ETH withdrawals are paid from the hot Safe (a float of %s wei, the house's) by the dev's Ether hot signer and co-signer (owner keys #1 and #2)\n", demo.HotEthFloat)
	fmt.Fprintf(w, "  ETH deposit addresses (counterfactual Safes of the cold 2-of-3 wallet %d; credited at %d blocks, its own counted):\n", demo.ColdEthWallet, demo.EthConfirmations)
	for _, p := range demo.Customers {
		if a, ok := e.DepositAddress(c, p.Customer); ok {
			fmt.Fprintf(w, "    %-18s customer %-6d %s\n", p.Email, p.Customer, a.Hex())
		}
	}
	fmt.Fprintf(w, "  pay one from the node: kinko dev pay --data %s --dev http://%s --address 0x... --amount WEI; mine: kinko dev mine --asset ETH --data %s --dev http://%s\n",
		dir, addr, dir, addr)
	fmt.Fprintf(w, "  or from the node's developer account %s (unlocked in the node): go tool geth attach --exec 'eth.sendTransaction({from: eth.accounts[0], to: \"0x...\", value: web3.toWei(1, \"ether\")})' %s\n",
		devnet.DevAccount.Hex(), e.Node.HTTPURL())
}
