// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {BridgeOperator} from "./BridgeOperator.sol";
import "./BridgeErrors.sol";

/// @title BridgeFee
/// @notice Request fees. Fees are set by configuration vote (Kaia's functions and arguments);
/// the receiver is set by the owner. No fee is taken while the receiver is unset. The requester
/// sends a fee limit; the bridge takes the current fee and refunds the change.
abstract contract BridgeFee is BridgeOperator {
    using SafeERC20 for IERC20;

    address public feeReceiver;
    uint256 public feeOfKLAY;
    mapping(address => uint256) public feeOfERC20;

    event FeeReceiverChanged(address indexed feeReceiver);
    event KLAYFeeChanged(uint256 fee);
    event ERC20FeeChanged(address indexed token, uint256 fee);

    function setFeeReceiver(address receiver) external onlyOwner {
        feeReceiver = receiver;
        emit FeeReceiverChanged(receiver);
    }

    /// @notice Configuration vote: the native-coin fee per request.
    function setKLAYFee(uint256 fee, uint64 requestNonce) external onlyOperators {
        if (!_voteConfiguration(requestNonce)) return;
        feeOfKLAY = fee;
        emit KLAYFeeChanged(fee);
    }

    /// @notice Configuration vote: the fee per request of `token`, in that token.
    function setERC20Fee(address token, uint256 fee, uint64 requestNonce) external onlyOperators {
        if (!_voteConfiguration(requestNonce)) return;
        feeOfERC20[token] = fee;
        emit ERC20FeeChanged(token, fee);
    }

    /// Takes the native fee out of `feeLimit` (already received) and refunds the rest.
    function _payKLAYFeeAndRefundChange(uint256 feeLimit) internal returns (uint256 fee) {
        address receiver = feeReceiver;
        if (receiver != address(0)) fee = feeOfKLAY;
        if (feeLimit < fee) revert FeeLimitTooLow(feeLimit, fee);
        if (fee > 0) Address.sendValue(payable(receiver), fee);
        if (feeLimit > fee) Address.sendValue(payable(msg.sender), feeLimit - fee);
    }

    /// Takes the token fee out of `feeLimit` (already received) and refunds the rest.
    function _payERC20FeeAndRefundChange(address token, uint256 feeLimit) internal returns (uint256 fee) {
        address receiver = feeReceiver;
        if (receiver != address(0)) fee = feeOfERC20[token];
        if (feeLimit < fee) revert FeeLimitTooLow(feeLimit, fee);
        if (fee > 0) IERC20(token).safeTransfer(receiver, fee);
        if (feeLimit > fee) IERC20(token).safeTransfer(msg.sender, feeLimit - fee);
    }
}
