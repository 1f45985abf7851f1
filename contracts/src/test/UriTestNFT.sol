// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721Burnable} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721Burnable.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title UriTestNFT
/// @notice Test-only. An ERC-721 whose token URIs are arbitrary bytes (any length, not UTF-8,
/// NUL at either end) and whose `tokenURI` can be made to fail, for the URI edge cases of
/// bridging NFTs. A bridge in mint/burn mode mints it with the URI it was voted.
contract UriTestNFT is ERC721, ERC721Burnable, Ownable {
    mapping(address => bool) public minters;
    mapping(uint256 => bytes) private uris;
    /// Token ids whose `tokenURI` reverts.
    mapping(uint256 => bool) public failingURI;

    constructor(string memory name_, string memory symbol_) ERC721(name_, symbol_) Ownable(msg.sender) {}

    function setMinter(address minter, bool allowed) external onlyOwner {
        minters[minter] = allowed;
    }

    function setFailingURI(uint256 tokenId, bool failing) external onlyOwner {
        failingURI[tokenId] = failing;
    }

    /// @notice Mints `tokenId` with `uri` (raw bytes) to `to`; the owner or a minter only.
    function mintWithTokenURI(address to, uint256 tokenId, string calldata uri) external {
        require(msg.sender == owner() || minters[msg.sender], "UriTestNFT: not a minter");
        _mint(to, tokenId);
        uris[tokenId] = bytes(uri);
    }

    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        require(!failingURI[tokenId], "UriTestNFT: tokenURI fails");
        _requireOwned(tokenId);
        return string(uris[tokenId]);
    }

    /// The stored URI as bytes (a reader need not decode it as text).
    function rawTokenURI(uint256 tokenId) external view returns (bytes memory) {
        return uris[tokenId];
    }
}
