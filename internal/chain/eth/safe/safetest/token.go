package safetest

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
)

// erc20Path is the compiled ERC-20 the Safe contracts package ships for
// its own tests (OpenZeppelin's ERC20, "TestToken"/"TT", 18 decimals, its
// constructor minting 10^15 base units to the deployer), under the
// installed artifacts; erc20CodeHash pins its creation code.
const (
	erc20Path     = "test/ERC20Token.sol/ERC20Token.json"
	erc20CodeHash = "0xbede77cafea8725dee347a8cb75d2201e40ea5d91d55bd244fddd1f04ec4fe44"
	// ERC20Supply is what ERC20Token's constructor mints to its deployer.
	ERC20Supply = 1_000_000_000_000_000
)

// ERC20Token returns the creation code and runtime code of the Safe
// package's ERC20Token, checked against the pinned hash.
func ERC20Token() (creation, runtime []byte, err error) {
	dir, err := safe.ArtifactsDir()
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(erc20Path)))
	if err != nil {
		return nil, nil, fmt.Errorf("safetest: %w", err)
	}
	var f struct{ Bytecode, DeployedBytecode string }
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("safetest: %s: %w", erc20Path, err)
	}
	if creation, err = hex.DecodeString(strings.TrimPrefix(f.Bytecode, "0x")); err != nil {
		return nil, nil, fmt.Errorf("safetest: %s: %w", erc20Path, err)
	}
	if runtime, err = hex.DecodeString(strings.TrimPrefix(f.DeployedBytecode, "0x")); err != nil {
		return nil, nil, fmt.Errorf("safetest: %s: %w", erc20Path, err)
	}
	if h := crypto.Keccak256Hash(creation).Hex(); h != erc20CodeHash {
		return nil, nil, fmt.Errorf("%w: %s creation code %s, pinned %s", safe.ErrArtifactChanged, erc20Path, h, erc20CodeHash)
	}
	return creation, runtime, nil
}

// DeployERC20 deploys ERC20Token from key (who holds its whole supply)
// and checks the code on chain is the artifact's runtime code.
func DeployERC20(ctx context.Context, c *eth.Client, key *ecdsa.PrivateKey) (common.Address, error) {
	creation, runtime, err := ERC20Token()
	if err != nil {
		return common.Address{}, err
	}
	return deploy(ctx, c, key, creation, runtime)
}

// LogEmitterCode is the creation code of a contract, assembled by hand,
// whose every call emits an ERC-20 Transfer(caller, to, amount) log read
// from transfer(to, amount) calldata, and keeps no balances: an impostor
// that logs what a token logs, with any amount (up to 2^256-1).
//
//	init:    PUSH1 49 DUP1 PUSH1 11 PUSH1 0 CODECOPY PUSH1 0 RETURN
//	runtime: PUSH1 0x24 CALLDATALOAD PUSH1 0 MSTORE   ; amount → memory[0:32]
//	         PUSH1 0x04 CALLDATALOAD CALLER            ; topics 2 and 1: to, from
//	         PUSH32 keccak("Transfer(address,address,uint256)")
//	         PUSH1 32 PUSH1 0 LOG3 STOP
func LogEmitterCode() []byte {
	init, _ := hex.DecodeString("603180600b6000396000f3")
	code, _ := hex.DecodeString("60243560005260043533" + "7f")
	code = append(append(init, code...), crypto.Keccak256([]byte("Transfer(address,address,uint256)"))...)
	tail, _ := hex.DecodeString("60206000a300")
	return append(code, tail...)
}

// DeployLogEmitter deploys the contract of LogEmitterCode from key.
func DeployLogEmitter(ctx context.Context, c *eth.Client, key *ecdsa.PrivateKey) (common.Address, error) {
	code := LogEmitterCode()
	return deploy(ctx, c, key, code, code[11:])
}

func deploy(ctx context.Context, c *eth.Client, key *ecdsa.PrivateKey, creation, runtime []byte) (common.Address, error) {
	r, err := c.Send(ctx, key, eth.Tx{Data: creation})
	if err != nil {
		return common.Address{}, fmt.Errorf("safetest: deploy: %w", err)
	}
	got, err := c.Code(ctx, r.ContractAddress)
	if err != nil {
		return common.Address{}, err
	}
	if string(got) != string(runtime) {
		return common.Address{}, fmt.Errorf("safetest: code at %s is %d bytes, not the %d expected", r.ContractAddress, len(got), len(runtime))
	}
	return r.ContractAddress, nil
}

// TransferCall is the calldata of ERC-20 transfer(to, amount).
func TransferCall(to common.Address, amount *big.Int) []byte {
	data := append([]byte{}, crypto.Keccak256([]byte("transfer(address,uint256)"))[:4]...)
	data = append(data, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(data, common.LeftPadBytes(amount.Bytes(), 32)...)
}
