// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Custom errors of the bridge. Each one names what was wrong so that an agent, an
/// operator or a block explorer can tell failures apart without parsing strings.

/// The caller is not a registered operator.
error NotOperator(address caller);
/// A vote for a request nonce that has already been executed (a late or duplicate vote).
error AlreadyExecuted(uint64 requestNonce);
/// A configuration vote for a nonce other than the current configuration nonce.
error ConfigurationNonceMismatch(uint64 expected, uint64 given);
/// A threshold outside 1..=operator count, or an operator change that would leave a threshold
/// above the operator count.
error InvalidThreshold(uint8 voteType, uint256 threshold, uint256 operatorCount);
/// A vote type other than value transfer (0) or configuration (1).
error UnknownVoteType(uint8 voteType);
/// Registering an address that is already an operator.
error AlreadyOperator(address operator);
/// The operator set is full.
error TooManyOperators(uint256 max);
/// Accepting an operator key that was not proposed for that operator.
error NoPendingOperatorKey(address operator, address caller);
/// The zero address where a real one is needed.
error ZeroAddress();
/// A zero amount where a positive one is needed.
error ZeroValue();
/// Requests are paused (`isRunning` is false).
error BridgeNotRunning();
/// The token has no registered counterpart on this bridge.
error TokenNotRegistered(address token);
/// The token is already registered.
error TokenAlreadyRegistered(address token);
/// Less native coin was sent than the value plus the fee.
error InsufficientPayment(uint256 sent, uint256 required);
/// The fee limit given is below the current fee.
error FeeLimitTooLow(uint256 feeLimit, uint256 fee);
/// The bridge does not hold enough free native coin to pay out a transfer.
error InsufficientLiquidity(uint256 available, uint256 required);
/// The token moved a different amount than asked (fee-on-transfer and rebasing tokens are not
/// supported: they would break the bridge's conservation of value).
error UnsupportedTokenBehaviour(address token, uint256 expected, uint256 received);
/// Nothing to claim.
error NothingToClaim(address account);
