// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title KaiaStyleOperator
/// @notice Test-only. The operator seats and votes of a Kaia-style service-chain bridge, written
/// from the behaviour listed in `shared/KAIA-FACTS.md` (not from Kaia's source), so CI can run
/// the agent against a bridge that answers the way Kaia's deployed one does:
///
/// - a vote's key is `keccak256(msg.data)` and lives in private storage: no view, no event;
/// - an operator voting again for a nonce replaces its earlier vote (old key's count down),
///   and an identical re-vote is mined, changes nothing and does not revert;
/// - counts are stored, not recomputed over current seats: a deregistered operator's vote
///   still counts, and `deregisterOperator` checks neither thresholds nor outstanding votes;
/// - at the threshold the nonce's vote data is deleted and the caller learns it passed;
/// - `Error(string)` reverts; thresholds start at 1; at most 12 seats, the deployer's included
///   (the constructor registers it).
abstract contract KaiaStyleOperator is Ownable {
    uint8 internal constant VOTE_VALUE_TRANSFER = 0;
    uint8 internal constant VOTE_CONFIGURATION = 1;
    uint64 public constant MAX_OPERATOR = 12;

    /// One (vote type, nonce)'s votes. The lists remember what to delete at the threshold.
    struct Tally {
        address[] voters;
        mapping(address => bytes32) keyOf;
        bytes32[] keys;
        mapping(bytes32 => uint8) count;
    }

    mapping(uint8 => mapping(uint64 => Tally)) private tallies;

    mapping(address => bool) public operators;
    address[] public operatorList;
    /// Votes needed per vote type (0 value transfer, 1 configuration).
    mapping(uint8 => uint8) public operatorThresholds;
    uint64 public configurationNonce;
    /// Request nonce → executed, until `lowerHandleNonce` passes it (then deleted again).
    mapping(uint64 => bool) public closedValueTransferVotes;

    modifier onlyOperators() {
        require(operators[msg.sender], "msg.sender is not an operator");
        _;
    }

    constructor() {
        operatorThresholds[VOTE_VALUE_TRANSFER] = 1;
        operatorThresholds[VOTE_CONFIGURATION] = 1;
        operators[msg.sender] = true;
        operatorList.push(msg.sender);
    }

    function getOperatorList() external view returns (address[] memory) {
        return operatorList;
    }

    function registerOperator(address operator) external onlyOwner {
        require(operatorList.length < MAX_OPERATOR, "max operator limit");
        require(!operators[operator], "exist operator");
        operators[operator] = true;
        operatorList.push(operator);
    }

    /// Removes a seat. Like Kaia's, it checks neither the thresholds nor the seat's votes.
    function deregisterOperator(address operator) external onlyOwner {
        require(operators[operator], "not an operator");
        delete operators[operator];
        uint256 n = operatorList.length;
        for (uint256 i = 0; i < n; i++) {
            if (operatorList[i] == operator) {
                operatorList[i] = operatorList[n - 1];
                operatorList.pop();
                break;
            }
        }
    }

    function setOperatorThreshold(uint8 voteType, uint8 threshold) external onlyOwner {
        require(voteType <= VOTE_CONFIGURATION, "unknown vote type");
        require(threshold > 0, "zero threshold");
        require(operatorList.length >= threshold, "bigger than num of operators");
        operatorThresholds[voteType] = threshold;
    }

    /// Records the caller's vote (replacing its earlier one) and tells whether the key reached
    /// the threshold; if so, the nonce's vote data is gone.
    function _vote(uint8 voteType, uint64 nonce) private returns (bool) {
        Tally storage t = tallies[voteType][nonce];
        bytes32 key = keccak256(msg.data);
        bytes32 old = t.keyOf[msg.sender];
        if (old == bytes32(0)) {
            t.voters.push(msg.sender);
        } else {
            t.count[old]--;
        }
        t.keyOf[msg.sender] = key;
        if (t.count[key] == 0) t.keys.push(key);
        t.count[key]++;
        if (t.count[key] < operatorThresholds[voteType]) return false;
        for (uint256 i = 0; i < t.voters.length; i++) {
            delete t.keyOf[t.voters[i]];
        }
        for (uint256 i = 0; i < t.keys.length; i++) {
            delete t.count[t.keys[i]];
        }
        delete tallies[voteType][nonce];
        return true;
    }

    function _voteValueTransfer(uint64 nonce) internal returns (bool) {
        require(!closedValueTransferVotes[nonce], "closed vote");
        if (!_vote(VOTE_VALUE_TRANSFER, nonce)) return false;
        closedValueTransferVotes[nonce] = true;
        return true;
    }

    function _voteConfiguration(uint64 nonce) internal returns (bool) {
        require(configurationNonce == nonce, "nonce mismatch");
        if (!_vote(VOTE_CONFIGURATION, nonce)) return false;
        configurationNonce++;
        return true;
    }
}
