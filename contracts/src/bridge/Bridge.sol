// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {BridgeTokens} from "./BridgeTokens.sol";
import {IBridgeMintableERC20, IBridgeMintableERC721} from "./IBridgeTokens.sol";
import "./BridgeErrors.sol";

/// @title Bridge
/// @notice One side of a value-transfer bridge, speaking the agent-facing ABI of Kaia's
/// service-chain bridge (events, handle functions and views keep Kaia's names and types).
///
///   user ──request*Transfer──> Bridge(source) ──RequestValueTransfer[Encoded]──> agents
///   agents ──handle*Transfer (one vote each)──> Bridge(destination)
///        └─ t identical votes ─> unlock or mint, HandleValueTransfer
///
/// Native coin is always locked and unlocked (the service-chain side is funded through
/// `chargeWithoutEvent`); tokens are locked/unlocked or, with `modeMintBurn`, burned/minted.
contract Bridge is BridgeTokens, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint8 public constant TOKEN_TYPE_KLAY = 0;
    uint8 public constant TOKEN_TYPE_ERC20 = 1;
    uint8 public constant TOKEN_TYPE_ERC721 = 2;
    /// `RequestValueTransferEncoded.encodedData` = `abi.encode(string(abi.encode(tokenURI)))`:
    /// the URI encoded twice, as Kaia's bridge emits it (see `_encodedTokenURI`).
    uint8 public constant ENCODING_VER_ERC721_URI = 2;
    /// Rounds of the lower-handle-nonce catch-up loop per handle, to bound gas.
    uint64 public constant MAX_HANDLE_NONCE_ADVANCE = 200;
    /// Gas forwarded to a native-coin recipient; a recipient that fails gets a claim instead.
    uint256 public constant NATIVE_PAYOUT_GAS = 100_000;

    /// Tokens are burned on request and minted on handle (true), or locked and unlocked (false).
    bool public immutable modeMintBurn;
    /// Whether requests are accepted. Handles always run, so transfers in flight complete.
    bool public isRunning;
    /// The bridge on the other chain (informational, for agents and explorers).
    address public counterpartBridge;

    /// Nonce the next request gets.
    uint64 public requestNonce;
    /// Lowest request nonce not yet executed here; every nonce below it has executed.
    uint64 public lowerHandleNonce;
    /// Highest request nonce executed here.
    uint64 public upperHandleNonce;
    /// Source-chain block of the request at `lowerHandleNonce - 1`: rescan from here to recover.
    uint64 public recoveryBlockNumber = 1;
    /// Request nonce → the source-chain block number of its request, recorded on execution.
    mapping(uint64 => uint64) public handleNoncesToBlockNums;
    /// Request nonce → executed here.
    mapping(uint64 => bool) public closedValueTransferVotes;
    /// Request transaction hash → executed here.
    mapping(bytes32 => bool) public handledRequestTx;
    /// Native coin owed to recipients whose payout failed; they claim it with `claimNative`.
    mapping(address => uint256) public unclaimedNative;
    uint256 public totalUnclaimedNative;

    event RequestValueTransfer(
        uint8 tokenType,
        address indexed from,
        address indexed to,
        address indexed tokenAddress,
        uint256 valueOrTokenId,
        uint64 requestNonce,
        uint256 fee,
        bytes extraData
    );
    event RequestValueTransferEncoded(
        uint8 tokenType,
        address indexed from,
        address indexed to,
        address indexed tokenAddress,
        uint256 valueOrTokenId,
        uint64 requestNonce,
        uint256 fee,
        bytes extraData,
        uint8 encodingVer,
        bytes encodedData
    );
    event HandleValueTransfer(
        bytes32 requestTxHash,
        uint8 tokenType,
        address indexed from,
        address indexed to,
        address indexed tokenAddress,
        uint256 valueOrTokenId,
        uint64 handleNonce,
        uint64 lowerHandleNonce,
        bytes extraData
    );
    event RunningStatusChanged(bool isRunning);
    event CounterpartBridgeChanged(address indexed counterpartBridge);
    event NativePayoutDeferred(uint64 indexed handleNonce, address indexed to, uint256 value);
    event NativeClaimed(address indexed account, address indexed recipient, uint256 value);

    modifier whenRunning() {
        if (!isRunning) revert BridgeNotRunning();
        _;
    }

    /// @param _modeMintBurn true on a side whose tokens the bridge mints and burns.
    /// Native coin sent with the deployment becomes payout liquidity.
    constructor(bool _modeMintBurn) payable Ownable(msg.sender) {
        modeMintBurn = _modeMintBurn;
        isRunning = true;
        emit RunningStatusChanged(true);
    }

    // ---------------------------------------------------------------- owner

    /// @notice Pauses (false) or resumes (true) requests.
    function start(bool status) external onlyOwner {
        isRunning = status;
        emit RunningStatusChanged(status);
    }

    function setCounterPartBridge(address bridge) external onlyOwner {
        counterpartBridge = bridge;
        emit CounterpartBridgeChanged(bridge);
    }

    /// @notice Adds native payout liquidity. There is deliberately no receive or fallback
    /// function: a plain coin transfer reverts instead of becoming a request.
    function chargeWithoutEvent() external payable {}

    // ---------------------------------------------------------------- requests

    /// @notice Requests `value` native coin to `to` on the other chain. `msg.value` must cover
    /// the value plus the fee; the change is refunded.
    function requestKLAYTransfer(address to, uint256 value, bytes calldata extraData)
        external
        payable
        nonReentrant
        whenRunning
    {
        if (to == address(0)) revert ZeroAddress();
        if (value == 0) revert ZeroValue();
        if (msg.value < value) revert InsufficientPayment(msg.value, value);
        uint256 fee = _payKLAYFeeAndRefundChange(msg.value - value);
        emit RequestValueTransfer(TOKEN_TYPE_KLAY, msg.sender, to, address(0), value, requestNonce, fee, extraData);
        requestNonce++;
    }

    /// @notice Requests `value` of `token` to `to` on the other chain. The bridge pulls
    /// `value + feeLimit` (approve it first), takes the fee and refunds the change.
    function requestERC20Transfer(address token, address to, uint256 value, uint256 feeLimit, bytes calldata extraData)
        external
        nonReentrant
        whenRunning
    {
        _requireRegistered(token);
        if (to == address(0)) revert ZeroAddress();
        if (value == 0) revert ZeroValue();
        uint256 total = value + feeLimit;
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), total);
        uint256 received = IERC20(token).balanceOf(address(this)) - before;
        if (received != total) revert UnsupportedTokenBehaviour(token, total, received);
        uint256 fee = _payERC20FeeAndRefundChange(token, feeLimit);
        if (modeMintBurn) IBridgeMintableERC20(token).burn(value);
        emit RequestValueTransfer(TOKEN_TYPE_ERC20, msg.sender, to, token, value, requestNonce, fee, extraData);
        requestNonce++;
    }

    /// @notice Requests NFT `tokenId` of `token` to `to` on the other chain (approve it first).
    /// The token URI travels in `RequestValueTransferEncoded` (encodingVer 2).
    function requestERC721Transfer(address token, address to, uint256 tokenId, bytes calldata extraData)
        external
        nonReentrant
        whenRunning
    {
        _requireRegistered(token);
        if (to == address(0)) revert ZeroAddress();
        bytes memory encodedURI = _encodedTokenURI(token, tokenId);
        IERC721(token).transferFrom(msg.sender, address(this), tokenId);
        if (modeMintBurn) IBridgeMintableERC721(token).burn(tokenId);
        emit RequestValueTransferEncoded(
            TOKEN_TYPE_ERC721,
            msg.sender,
            to,
            token,
            tokenId,
            requestNonce,
            0,
            extraData,
            ENCODING_VER_ERC721_URI,
            encodedURI
        );
        requestNonce++;
    }

    // ---------------------------------------------------------------- handles (operator votes)

    /// @notice Vote to pay out a native-coin request from the other chain.
    function handleKLAYTransfer(
        bytes32 requestTxHash,
        address from,
        address to,
        uint256 value,
        uint64 requestedNonce,
        uint64 requestedBlockNumber,
        bytes calldata extraData
    ) external onlyOperators nonReentrant {
        if (!_voteValueTransfer(requestedNonce)) return;
        uint256 available = address(this).balance - totalUnclaimedNative;
        if (available < value) revert InsufficientLiquidity(available, value);
        _markHandled(requestTxHash, requestedNonce, requestedBlockNumber);
        emit HandleValueTransfer(
            requestTxHash, TOKEN_TYPE_KLAY, from, to, address(0), value, requestedNonce, lowerHandleNonce, extraData
        );
        (bool ok,) = payable(to).call{value: value, gas: NATIVE_PAYOUT_GAS}("");
        if (!ok) {
            unclaimedNative[to] += value;
            totalUnclaimedNative += value;
            emit NativePayoutDeferred(requestedNonce, to, value);
        }
    }

    /// @notice Vote to pay out an ERC-20 request; `tokenAddress` is this chain's token.
    function handleERC20Transfer(
        bytes32 requestTxHash,
        address from,
        address to,
        address tokenAddress,
        uint256 value,
        uint64 requestedNonce,
        uint64 requestedBlockNumber,
        bytes calldata extraData
    ) external onlyOperators nonReentrant {
        _requireRegistered(tokenAddress);
        if (!_voteValueTransfer(requestedNonce)) return;
        _markHandled(requestTxHash, requestedNonce, requestedBlockNumber);
        emit HandleValueTransfer(
            requestTxHash, TOKEN_TYPE_ERC20, from, to, tokenAddress, value, requestedNonce, lowerHandleNonce, extraData
        );
        if (modeMintBurn) {
            IBridgeMintableERC20(tokenAddress).mint(to, value);
        } else {
            IERC20(tokenAddress).safeTransfer(to, value);
        }
    }

    /// @notice Vote to pay out an ERC-721 request; `tokenAddress` is this chain's token.
    function handleERC721Transfer(
        bytes32 requestTxHash,
        address from,
        address to,
        address tokenAddress,
        uint256 tokenId,
        uint64 requestedNonce,
        uint64 requestedBlockNumber,
        string calldata tokenURI,
        bytes calldata extraData
    ) external onlyOperators nonReentrant {
        _requireRegistered(tokenAddress);
        if (!_voteValueTransfer(requestedNonce)) return;
        _markHandled(requestTxHash, requestedNonce, requestedBlockNumber);
        emit HandleValueTransfer(
            requestTxHash, TOKEN_TYPE_ERC721, from, to, tokenAddress, tokenId, requestedNonce, lowerHandleNonce, extraData
        );
        if (modeMintBurn) {
            IBridgeMintableERC721(tokenAddress).mintWithTokenURI(to, tokenId, tokenURI);
        } else {
            IERC721(tokenAddress).transferFrom(address(this), to, tokenId);
        }
    }

    /// @notice Sends the native coin owed to the caller (a payout that failed) to `recipient`.
    function claimNative(address payable recipient) external nonReentrant {
        uint256 amount = unclaimedNative[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        if (recipient == address(0)) revert ZeroAddress();
        unclaimedNative[msg.sender] = 0;
        totalUnclaimedNative -= amount;
        emit NativeClaimed(msg.sender, recipient, amount);
        Address.sendValue(recipient, amount);
    }

    // ---------------------------------------------------------------- internals

    function _voteValueTransfer(uint64 nonce) private returns (bool) {
        if (nonce < lowerHandleNonce || closedValueTransferVotes[nonce]) revert AlreadyExecuted(nonce);
        return _vote(VOTE_TYPE_VALUE_TRANSFER, nonce);
    }

    /// Closes `nonce` and advances the handle-nonce bookkeeping that recovery reads.
    function _markHandled(bytes32 requestTxHash, uint64 nonce, uint64 requestBlockNumber) private {
        closedValueTransferVotes[nonce] = true;
        handledRequestTx[requestTxHash] = true;
        handleNoncesToBlockNums[nonce] = requestBlockNumber;
        if (nonce > upperHandleNonce) upperHandleNonce = nonce;
        uint64 i = lowerHandleNonce;
        uint64 limit = i + MAX_HANDLE_NONCE_ADVANCE;
        while (i < limit && closedValueTransferVotes[i]) {
            recoveryBlockNumber = handleNoncesToBlockNums[i];
            i++;
        }
        lowerHandleNonce = i;
    }

    /// The URI data as Kaia's bridge emits it (encodingVer 2): `abi.encode(string(answer))`,
    /// `answer` being the ABI encoding of `tokenURI`'s string, or empty when the call fails. So
    /// the agent reads one rule on both kinds of bridge, and Kaia's own node run against this
    /// bridge votes the same URI. The answer is re-encoded after decoding, so it is always the
    /// canonical encoding (Kaia's takes the raw return data). Before issue 13 this bridge
    /// emitted `abi.encode(uri)`; the agent still reads that (src/votes/uri.rs).
    function _encodedTokenURI(address token, uint256 tokenId) private view returns (bytes memory) {
        try IERC721Metadata(token).tokenURI(tokenId) returns (string memory uri) {
            return abi.encode(string(abi.encode(uri)));
        } catch {
            return abi.encode(string(""));
        }
    }
}
