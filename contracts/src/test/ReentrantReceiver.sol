// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Test-only. A native-coin recipient that tries to re-enter the bridge when paid.
/// With `bubble` false it swallows the bridge's answer and records whether re-entry was
/// refused; with `bubble` true it reverts, so the bridge must defer the payout to a claim.
contract ReentrantReceiver {
    address public immutable bridge;
    bool public bubble;
    bool public reentryRefused;
    bytes public lastRevertData;

    constructor(address bridge_) {
        bridge = bridge_;
    }

    function setBubble(bool value) external {
        bubble = value;
    }

    /// Claims a deferred payout from the bridge, to `to`.
    function claim(address payable to) external {
        (bool ok, bytes memory data) = bridge.call(abi.encodeWithSignature("claimNative(address)", to));
        if (!ok) {
            assembly {
                revert(add(data, 32), mload(data))
            }
        }
    }

    receive() external payable {
        (bool ok, bytes memory data) = bridge.call{value: msg.value}(
            abi.encodeWithSignature("requestKLAYTransfer(address,uint256,bytes)", address(this), msg.value, "")
        );
        if (bubble) revert("ReentrantReceiver: refusing payment");
        reentryRefused = !ok;
        lastRevertData = data;
    }
}
