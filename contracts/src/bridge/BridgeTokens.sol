// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BridgeFee} from "./BridgeFee.sol";
import "./BridgeErrors.sol";

/// @title BridgeTokens
/// @notice The token registry: a token on this chain → its counterpart on the other chain.
/// Only registered tokens can be requested or handled.
abstract contract BridgeTokens is BridgeFee {
    /// This chain's token → the counterpart token on the other chain.
    mapping(address => address) public registeredTokens;
    address[] private registeredTokenList;

    event TokenRegistered(address indexed token, address indexed counterpartToken);
    event TokenDeregistered(address indexed token);

    function getRegisteredTokenList() external view returns (address[] memory) {
        return registeredTokenList;
    }

    function registerToken(address token, address counterpartToken) external onlyOwner {
        if (token == address(0) || counterpartToken == address(0)) revert ZeroAddress();
        if (registeredTokens[token] != address(0)) revert TokenAlreadyRegistered(token);
        registeredTokens[token] = counterpartToken;
        registeredTokenList.push(token);
        emit TokenRegistered(token, counterpartToken);
    }

    function deregisterToken(address token) external onlyOwner {
        if (registeredTokens[token] == address(0)) revert TokenNotRegistered(token);
        delete registeredTokens[token];
        uint256 n = registeredTokenList.length;
        for (uint256 i = 0; i < n; i++) {
            if (registeredTokenList[i] == token) {
                registeredTokenList[i] = registeredTokenList[n - 1];
                registeredTokenList.pop();
                break;
            }
        }
        emit TokenDeregistered(token);
    }

    function _requireRegistered(address token) internal view {
        if (registeredTokens[token] == address(0)) revert TokenNotRegistered(token);
    }
}
