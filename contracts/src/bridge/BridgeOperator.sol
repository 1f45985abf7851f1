// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import "./BridgeErrors.sol";

/// @title BridgeOperator
/// @notice The operator set, the per-vote-type thresholds and the voting itself.
///
/// A vote counts for `keccak256(msg.data)`: every operator must send byte-identical calldata for
/// its vote to join the others. Each operator holds at most one vote per (vote type, nonce); a
/// new vote replaces its earlier one, so re-sending the same vote never double counts and a
/// seat never counts twice. Tallies count only *current* operators, so a removed or rotated-out
/// address stops counting at once, and the address that took over its seat starts fresh.
abstract contract BridgeOperator is Ownable2Step {
    uint8 public constant VOTE_TYPE_VALUE_TRANSFER = 0;
    uint8 public constant VOTE_TYPE_CONFIGURATION = 1;
    uint256 public constant MAX_OPERATORS = 32;

    /// Whether an address holds an operator seat.
    mapping(address => bool) public operators;
    address[] private operatorList;
    /// Votes needed per vote type (0 value transfer, 1 configuration).
    mapping(uint8 => uint8) public operatorThresholds;
    /// The nonce the next configuration vote must carry.
    uint64 public configurationNonce;
    /// New address proposed by an operator for its own seat (two-step rotation).
    mapping(address => address) public pendingOperatorKey;

    // voteType => nonce => operator => vote key; zero when the operator has not voted.
    mapping(uint8 => mapping(uint64 => mapping(address => bytes32))) private votes;

    event OperatorRegistered(address indexed operator);
    event OperatorDeregistered(address indexed operator);
    event OperatorThresholdChanged(uint8 indexed voteType, uint8 threshold);
    event OperatorKeyProposed(address indexed operator, address indexed newOperator);
    event OperatorReplaced(address indexed oldOperator, address indexed newOperator);
    event Voted(uint8 indexed voteType, uint64 indexed nonce, address indexed operator, bytes32 voteKey);

    modifier onlyOperators() {
        if (!operators[msg.sender]) revert NotOperator(msg.sender);
        _;
    }

    constructor() {
        operatorThresholds[VOTE_TYPE_VALUE_TRANSFER] = 1;
        operatorThresholds[VOTE_TYPE_CONFIGURATION] = 1;
    }

    // ---------------------------------------------------------------- views

    function getOperatorList() external view returns (address[] memory) {
        return operatorList;
    }

    /// @notice The vote key `operator` holds for `nonce` of `voteType`, or zero if none.
    /// For value transfers the nonce is the request nonce. Kaia's bridge keeps this private.
    function voteOf(uint8 voteType, uint64 nonce, address operator) external view returns (bytes32) {
        return votes[voteType][nonce][operator];
    }

    /// @notice How many current operators hold `voteKey` for `nonce` of `voteType`.
    function voteCount(uint8 voteType, uint64 nonce, bytes32 voteKey) public view returns (uint256 count) {
        uint256 n = operatorList.length;
        for (uint256 i = 0; i < n; i++) {
            if (votes[voteType][nonce][operatorList[i]] == voteKey) count++;
        }
    }

    // ---------------------------------------------------------------- owner administration

    function registerOperator(address operator) external onlyOwner {
        if (operator == address(0)) revert ZeroAddress();
        if (operators[operator]) revert AlreadyOperator(operator);
        if (operatorList.length >= MAX_OPERATORS) revert TooManyOperators(MAX_OPERATORS);
        operators[operator] = true;
        operatorList.push(operator);
        emit OperatorRegistered(operator);
    }

    /// @notice Removes an operator. Reverts if a threshold would exceed the operators left.
    function deregisterOperator(address operator) external onlyOwner {
        if (!operators[operator]) revert NotOperator(operator);
        uint256 left = operatorList.length - 1;
        for (uint8 t = 0; t <= VOTE_TYPE_CONFIGURATION; t++) {
            if (operatorThresholds[t] > left) revert InvalidThreshold(t, operatorThresholds[t], left);
        }
        operators[operator] = false;
        delete pendingOperatorKey[operator];
        uint256 n = operatorList.length;
        for (uint256 i = 0; i < n; i++) {
            if (operatorList[i] == operator) {
                operatorList[i] = operatorList[n - 1];
                operatorList.pop();
                break;
            }
        }
        emit OperatorDeregistered(operator);
    }

    function setOperatorThreshold(uint8 voteType, uint8 threshold) external onlyOwner {
        if (voteType > VOTE_TYPE_CONFIGURATION) revert UnknownVoteType(voteType);
        if (threshold == 0 || threshold > operatorList.length) {
            revert InvalidThreshold(voteType, threshold, operatorList.length);
        }
        operatorThresholds[voteType] = threshold;
        emit OperatorThresholdChanged(voteType, threshold);
    }

    /// @notice The owner moves a seat from `oldOperator` to `newOperator`.
    function ownerReplaceOperator(address oldOperator, address newOperator) external onlyOwner {
        _replaceOperator(oldOperator, newOperator);
    }

    // ---------------------------------------------------------------- operator administration

    /// @notice Configuration vote: move a seat from `oldOperator` to `newOperator`.
    function replaceOperator(address oldOperator, address newOperator, uint64 nonce) external onlyOperators {
        if (!_voteConfiguration(nonce)) return;
        _replaceOperator(oldOperator, newOperator);
    }

    /// @notice Step one of a key rotation: the current operator proposes the address that will
    /// take its seat. Proposing the zero address withdraws a proposal.
    function proposeOperatorKey(address newOperator) external onlyOperators {
        if (operators[newOperator]) revert AlreadyOperator(newOperator);
        pendingOperatorKey[msg.sender] = newOperator;
        emit OperatorKeyProposed(msg.sender, newOperator);
    }

    /// @notice Step two: the proposed address accepts, and the seat moves to it.
    function acceptOperatorKey(address oldOperator) external {
        if (msg.sender == address(0) || pendingOperatorKey[oldOperator] != msg.sender) {
            revert NoPendingOperatorKey(oldOperator, msg.sender);
        }
        _replaceOperator(oldOperator, msg.sender);
    }

    // ---------------------------------------------------------------- internals

    function _replaceOperator(address oldOperator, address newOperator) private {
        if (newOperator == address(0)) revert ZeroAddress();
        if (!operators[oldOperator]) revert NotOperator(oldOperator);
        if (operators[newOperator]) revert AlreadyOperator(newOperator);
        uint256 n = operatorList.length;
        for (uint256 i = 0; i < n; i++) {
            if (operatorList[i] == oldOperator) {
                operatorList[i] = newOperator;
                break;
            }
        }
        operators[oldOperator] = false;
        operators[newOperator] = true;
        delete pendingOperatorKey[oldOperator];
        emit OperatorReplaced(oldOperator, newOperator);
    }

    /// Records the caller's vote and tells whether its key now has `voteType`'s threshold.
    function _vote(uint8 voteType, uint64 nonce) internal returns (bool) {
        bytes32 voteKey = keccak256(msg.data);
        if (votes[voteType][nonce][msg.sender] != voteKey) {
            votes[voteType][nonce][msg.sender] = voteKey;
            emit Voted(voteType, nonce, msg.sender, voteKey);
        }
        return voteCount(voteType, nonce, voteKey) >= operatorThresholds[voteType];
    }

    /// Configuration votes run in sequence: each must carry the current configuration nonce,
    /// which advances when a vote passes.
    function _voteConfiguration(uint64 nonce) internal returns (bool) {
        if (nonce != configurationNonce) revert ConfigurationNonceMismatch(configurationNonce, nonce);
        if (!_vote(VOTE_TYPE_CONFIGURATION, nonce)) return false;
        configurationNonce++;
        return true;
    }
}
