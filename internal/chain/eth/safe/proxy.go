package safe

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// proxyCreationHex is SafeProxy 1.4.1's creation code as
// @safe-global/safe-contracts publishes it (build/artifacts/contracts/
// proxies/SafeProxy.sol/SafeProxy.json, "bytecode"): 486 bytes whose
// keccak is artProxy's pinned hash (TestProxyCreationCode), and which
// Load requires the installed artifact to equal. It is the one piece of
// the contracts a counterfactual address commits to beyond the
// descriptor's addresses, kept here so that a role without the installed
// artifacts (the core's apply, which does no I/O; an offline machine)
// derives a deposit Safe's address itself (ProxyArtifacts).
const proxyCreationHex = "0x" +
	"608060405234801561001057600080fd5b506040516101e63803806101e6833981810160405260208110156100335760" +
	"0080fd5b8101908080519060200190929190505050600073ffffffffffffffffffffffffffffffffffffffff168173ff" +
	"ffffffffffffffffffffffffffffffffffffff1614156100ca576040517f08c379a00000000000000000000000000000" +
	"000000000000000000000000000081526004018080602001828103825260228152602001806101c46022913960400191" +
	"505060405180910390fd5b806000806101000a81548173ffffffffffffffffffffffffffffffffffffffff0219169083" +
	"73ffffffffffffffffffffffffffffffffffffffff1602179055505060ab806101196000396000f3fe608060405273ff" +
	"ffffffffffffffffffffffffffffffffffffff600054167fa619486e0000000000000000000000000000000000000000" +
	"000000000000000060003514156050578060005260206000f35b3660008037600080366000845af43d6000803e600081" +
	"14156070573d6000fd5b3d6000f3fea264697066735822122003d1488ee65e08fa41e58e888a9865554c535f2c77126a" +
	"82cb4c0f917f31441364736f6c63430007060033496e76616c69642073696e676c65746f6e2061646472657373207072" +
	"6f7669646564"

// proxyCreationCode is proxyCreationHex decoded.
var proxyCreationCode = hexutil.MustDecode(proxyCreationHex)

// ProxyArtifacts returns the artifacts that a counterfactual address's
// derivation needs and nothing else: the SafeProxy creation code pinned
// in this package (NewDeployment with them computes ProxyInitCodeHash,
// Initializer and Predictor, never a deployment or a call). The caller
// must not change the code.
func ProxyArtifacts() *Artifacts {
	return &Artifacts{Proxy: &Contract{Name: "SafeProxy", Bytecode: common.CopyBytes(proxyCreationCode)}}
}
