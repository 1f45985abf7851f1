// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Test-only. An ERC-20 whose `transferFrom` re-enters the bridge with a second request,
/// as a malicious registered token would. The bridge's reentrancy guard must refuse it.
contract ReentrantToken is ERC20 {
    address public immutable bridge;

    constructor(address bridge_) ERC20("Reentrant", "REE") {
        bridge = bridge_;
        _mint(msg.sender, 1e24);
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (msg.sender == bridge) {
            (bool ok, bytes memory data) = bridge.call(
                abi.encodeWithSignature(
                    "requestERC20Transfer(address,address,uint256,uint256,bytes)", address(this), from, 1, 0, ""
                )
            );
            if (!ok) {
                assembly {
                    revert(add(data, 32), mload(data))
                }
            }
        }
        return super.transferFrom(from, to, value);
    }
}
