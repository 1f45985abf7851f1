// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ServiceChainToken} from "../../token/ServiceChainToken.sol";
import {ServiceChainNFT} from "../../token/ServiceChainNFT.sol";

/// What a Kaia-style bridge offers tokens for one-step requests.
interface IKaiaStyleBridgeReceiver {
    function onERC20Received(address from, address to, uint256 value, uint256 feeLimit, bytes calldata extraData)
        external;
    function onERC721Received(address from, uint256 tokenId, address to, bytes calldata extraData) external;
}

/// @notice Test-only. An ERC-20 that requests a transfer in one step, as a Kaia service-chain
/// token does: it moves `value + feeLimit` to the bridge and calls `onERC20Received`.
contract KaiaStyleToken is ServiceChainToken {
    address public immutable bridge;

    constructor(string memory name_, string memory symbol_, address bridge_) ServiceChainToken(name_, symbol_) {
        bridge = bridge_;
    }

    function requestValueTransfer(uint256 value, address to, uint256 feeLimit, bytes calldata extraData) external {
        _transfer(msg.sender, bridge, value + feeLimit);
        IKaiaStyleBridgeReceiver(bridge).onERC20Received(msg.sender, to, value, feeLimit, extraData);
    }
}

/// @notice Test-only. An ERC-721 that requests a transfer in one step, as a Kaia service-chain
/// NFT does: it moves the token to the bridge and calls `onERC721Received`.
contract KaiaStyleNFT is ServiceChainNFT {
    address public immutable bridge;

    constructor(string memory name_, string memory symbol_, address bridge_) ServiceChainNFT(name_, symbol_) {
        bridge = bridge_;
    }

    function requestValueTransfer(uint256 tokenId, address to, bytes calldata extraData) external {
        transferFrom(msg.sender, bridge, tokenId);
        IKaiaStyleBridgeReceiver(bridge).onERC721Received(msg.sender, tokenId, to, extraData);
    }
}

/// @notice Test-only. A recipient that refuses native coin: on a Kaia-style bridge the closing
/// vote of a transfer to it reverts, so that nonce never executes.
contract RefusingReceiver {
    receive() external payable {
        revert("RefusingReceiver: no coins");
    }
}
