// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IBridgeMintableERC20, IBridgeMintableERC721} from "../../bridge/IBridgeTokens.sol";
import {KaiaStyleOperator} from "./KaiaStyleOperator.sol";

/// @title KaiaStyleBridge
/// @notice Test-only. One side of a bridge that behaves like Kaia's deployed service-chain bridge
/// in every point of `shared/KAIA-FACTS.md`, with the agent-facing ABI of our `Bridge` (same
/// events, same `request*`/`handle*` signatures, same nonce views), so the agent's Kaia rules
/// run in CI against real contract behaviour:
///
///   request*Transfer / fallback / onERC20Received / onERC721Received
///     └─ RequestValueTransfer, or RequestValueTransferEncoded(encodingVer 2,
///        abi.encode(string(raw tokenURI return data)))      ← the URI encoded twice
///   handle*Transfer (a private vote each) ─ threshold ─> closedValueTransferVotes[n] = true,
///     lowerHandleNonce advances (≤ 200) and deletes the flags it passes; pay with a
///     low-level call + require: a refused payout reverts the closing vote, for ever.
///
/// Native coin is locked/unlocked on both sides; tokens are burned/minted with `modeMintBurn`.
contract KaiaStyleBridge is KaiaStyleOperator, ReentrancyGuard {
    uint8 private constant KLAY = 0;
    uint8 private constant ERC20 = 1;
    uint8 private constant ERC721 = 2;
    uint64 private constant MAX_ADVANCE = 200;

    bool public immutable modeMintBurn;
    bool public isRunning = true;
    address public counterpartBridge;

    uint64 public requestNonce;
    uint64 public lowerHandleNonce;
    uint64 public upperHandleNonce;
    uint64 public recoveryBlockNumber = 1;
    /// Request nonce → its source block, from execution until `lowerHandleNonce` passes it.
    mapping(uint64 => uint64) public handleNoncesToBlockNums;
    mapping(bytes32 => bool) public handledRequestTx;

    address public feeReceiver;
    uint256 public feeOfKLAY;
    mapping(address => uint256) public feeOfERC20;

    /// This chain's token → the counterpart token on the other chain.
    mapping(address => address) public registeredTokens;
    address[] private registeredTokenList;

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

    constructor(bool _modeMintBurn) payable Ownable(msg.sender) {
        modeMintBurn = _modeMintBurn;
    }

    // ---------------------------------------------------------------- owner

    function start(bool status) external onlyOwner {
        isRunning = status;
    }

    function setCounterPartBridge(address bridge) external onlyOwner {
        counterpartBridge = bridge;
    }

    function setFeeReceiver(address receiver) external onlyOwner {
        feeReceiver = receiver;
    }

    function chargeWithoutEvent() external payable {}

    function registerToken(address token, address counterpartToken) external onlyOwner {
        require(registeredTokens[token] == address(0), "allowed token");
        registeredTokens[token] = counterpartToken;
        registeredTokenList.push(token);
    }

    function deregisterToken(address token) external onlyOwner {
        require(registeredTokens[token] != address(0), "not allowed token");
        delete registeredTokens[token];
        uint256 n = registeredTokenList.length;
        for (uint256 i = 0; i < n; i++) {
            if (registeredTokenList[i] == token) {
                registeredTokenList[i] = registeredTokenList[n - 1];
                registeredTokenList.pop();
                break;
            }
        }
    }

    function getRegisteredTokenList() external view returns (address[] memory) {
        return registeredTokenList;
    }

    // ---------------------------------------------------------------- configuration votes

    function setKLAYFee(uint256 fee, uint64 requestNonce_) external onlyOperators {
        if (_voteConfiguration(requestNonce_)) feeOfKLAY = fee;
    }

    function setERC20Fee(address token, uint256 fee, uint64 requestNonce_) external onlyOperators {
        if (_voteConfiguration(requestNonce_)) feeOfERC20[token] = fee;
    }

    // ---------------------------------------------------------------- requests

    /// The fee limit is whatever was sent beyond `value`.
    function requestKLAYTransfer(address to, uint256 value, bytes calldata extraData) external payable {
        _requestKLAYTransfer(to, msg.value - value, extraData);
    }

    /// A plain coin transfer (or an unknown call) is a request to the sender, with the current
    /// fee as the fee limit.
    fallback() external payable {
        _requestKLAYTransfer(msg.sender, feeOfKLAY, "");
    }

    receive() external payable {
        _requestKLAYTransfer(msg.sender, feeOfKLAY, "");
    }

    function requestERC20Transfer(address token, address to, uint256 value, uint256 feeLimit, bytes calldata extraData)
        external
    {
        require(
            IERC20(token).transferFrom(msg.sender, address(this), value + feeLimit),
            "requestERC20Transfer: transferFrom failed"
        );
        _requestERC20Transfer(token, msg.sender, to, value, feeLimit, extraData);
    }

    /// One-step request: the token moved `value + feeLimit` here and calls this.
    function onERC20Received(address from, address to, uint256 value, uint256 feeLimit, bytes calldata extraData)
        external
    {
        _requestERC20Transfer(msg.sender, from, to, value, feeLimit, extraData);
    }

    function requestERC721Transfer(address token, address to, uint256 tokenId, bytes calldata extraData) external {
        IERC721(token).transferFrom(msg.sender, address(this), tokenId);
        _requestERC721Transfer(token, msg.sender, to, tokenId, extraData);
    }

    /// One-step request: the token moved `tokenId` here and calls this.
    function onERC721Received(address from, uint256 tokenId, address to, bytes calldata extraData) external {
        _requestERC721Transfer(msg.sender, from, to, tokenId, extraData);
    }

    // ---------------------------------------------------------------- handles (operator votes)

    function handleKLAYTransfer(
        bytes32 requestTxHash,
        address from,
        address to,
        uint256 value,
        uint64 requestedNonce,
        uint64 requestedBlockNumber,
        bytes calldata extraData
    ) external onlyOperators nonReentrant {
        require(lowerHandleNonce <= requestedNonce, "removed vote");
        if (!_voteValueTransfer(requestedNonce)) return;
        _markHandled(requestTxHash, requestedNonce, requestedBlockNumber);
        emit HandleValueTransfer(
            requestTxHash, KLAY, from, to, address(0), value, requestedNonce, lowerHandleNonce, extraData
        );
        (bool ok,) = payable(to).call{value: value}("");
        require(ok, "handleKLAYTransfer: transfer failed");
    }

    function handleERC20Transfer(
        bytes32 requestTxHash,
        address from,
        address to,
        address tokenAddress,
        uint256 value,
        uint64 requestedNonce,
        uint64 requestedBlockNumber,
        bytes calldata extraData
    ) external onlyOperators {
        require(lowerHandleNonce <= requestedNonce, "removed vote");
        if (!_voteValueTransfer(requestedNonce)) return;
        _markHandled(requestTxHash, requestedNonce, requestedBlockNumber);
        emit HandleValueTransfer(
            requestTxHash, ERC20, from, to, tokenAddress, value, requestedNonce, lowerHandleNonce, extraData
        );
        if (modeMintBurn) {
            _callOrFail(
                tokenAddress, abi.encodeCall(IBridgeMintableERC20.mint, (to, value)), "handleERC20Transfer: mint failed"
            );
        } else {
            _callOrFail(
                tokenAddress, abi.encodeCall(IERC20.transfer, (to, value)), "handleERC20Transfer: transfer failed"
            );
        }
    }

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
    ) external onlyOperators {
        require(lowerHandleNonce <= requestedNonce, "removed vote");
        if (!_voteValueTransfer(requestedNonce)) return;
        _markHandled(requestTxHash, requestedNonce, requestedBlockNumber);
        emit HandleValueTransfer(
            requestTxHash, ERC721, from, to, tokenAddress, tokenId, requestedNonce, lowerHandleNonce, extraData
        );
        if (modeMintBurn) {
            _callOrFail(
                tokenAddress,
                abi.encodeCall(IBridgeMintableERC721.mintWithTokenURI, (to, tokenId, tokenURI)),
                "mint failed"
            );
        } else {
            IERC721(tokenAddress).transferFrom(address(this), to, tokenId);
        }
    }

    // ---------------------------------------------------------------- internals

    function _requestKLAYTransfer(address to, uint256 feeLimit, bytes memory extraData) private nonReentrant {
        require(isRunning, "stopped bridge");
        require(msg.value > feeLimit, "insufficient amount");
        uint256 fee = 0;
        if (feeReceiver != address(0) && feeOfKLAY > 0) {
            fee = feeOfKLAY;
            require(feeLimit >= fee, "insufficient feeLimit");
            _sendWithStipend(feeReceiver, fee);
        }
        // Kaia refunds the change even when it is zero.
        _sendWithStipend(msg.sender, feeLimit - fee);
        emit RequestValueTransfer(KLAY, msg.sender, to, address(0), msg.value - feeLimit, requestNonce, fee, extraData);
        requestNonce++;
    }

    function _requestERC20Transfer(
        address token,
        address from,
        address to,
        uint256 value,
        uint256 feeLimit,
        bytes memory extraData
    ) private {
        require(registeredTokens[token] != address(0), "not allowed token");
        require(isRunning, "stopped bridge");
        require(value > 0, "zero msg.value");
        string memory failed = "_payERC20FeeAndRefundChange: transfer failed";
        uint256 fee = 0;
        if (feeReceiver != address(0) && feeOfERC20[token] > 0) {
            fee = feeOfERC20[token];
            require(feeLimit >= fee, "insufficient feeLimit");
            _callOrFail(token, abi.encodeCall(IERC20.transfer, (feeReceiver, fee)), failed);
        }
        _callOrFail(token, abi.encodeCall(IERC20.transfer, (from, feeLimit - fee)), failed);
        if (modeMintBurn) IBridgeMintableERC20(token).burn(value);
        emit RequestValueTransfer(ERC20, from, to, token, value, requestNonce, fee, extraData);
        requestNonce++;
    }

    function _requestERC721Transfer(address token, address from, address to, uint256 tokenId, bytes memory extraData)
        private
    {
        require(registeredTokens[token] != address(0), "not allowed token");
        require(isRunning, "stopped bridge");
        // The raw return data (itself an ABI-encoded string), or nothing when the call fails.
        (bool ok, bytes memory uri) = token.call(abi.encodeCall(IERC721Metadata.tokenURI, (tokenId)));
        if (!ok) uri = "";
        if (modeMintBurn) IBridgeMintableERC721(token).burn(tokenId);
        emit RequestValueTransferEncoded(
            ERC721, from, to, token, tokenId, requestNonce, 0, extraData, 2, abi.encode(string(uri))
        );
        requestNonce++;
    }

    /// Records an execution and moves `lowerHandleNonce` over every executed nonce (at most
    /// 200 per call), deleting the block number and the closed flag of each nonce it passes.
    function _markHandled(bytes32 requestTxHash, uint64 nonce, uint64 requestedBlockNumber) private {
        handledRequestTx[requestTxHash] = true;
        handleNoncesToBlockNums[nonce] = requestedBlockNumber;
        if (nonce > upperHandleNonce) upperHandleNonce = nonce;
        uint64 limit = lowerHandleNonce + MAX_ADVANCE;
        uint64 i = lowerHandleNonce;
        while (i < limit && i <= upperHandleNonce && handleNoncesToBlockNums[i] > 0) {
            recoveryBlockNumber = handleNoncesToBlockNums[i];
            delete handleNoncesToBlockNums[i];
            delete closedValueTransferVotes[i];
            i++;
        }
        lowerHandleNonce = i;
    }

    /// Sends coins with the 2300-gas stipend of Solidity's `transfer` (what Kaia's 0.5 code
    /// uses for fees and change), reverting if the recipient refuses them.
    function _sendWithStipend(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount, gas: 2300}("");
        require(ok);
    }

    /// A token call that must succeed and return true (or nothing); else `Error(reason)`.
    function _callOrFail(address token, bytes memory data, string memory reason) private {
        (bool ok, bytes memory ret) = token.call(data);
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), reason);
    }
}
