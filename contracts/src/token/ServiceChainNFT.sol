// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";
import {ERC721Burnable} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721Burnable.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title ServiceChainNFT
/// @notice Test ERC-721 with per-token URIs that a bridge in mint/burn mode can mint (with the
/// URI carried across) and burn. The owner grants the minter role (to the bridge).
contract ServiceChainNFT is ERC721, ERC721URIStorage, ERC721Burnable, Ownable {
    mapping(address => bool) public minters;

    event MinterChanged(address indexed minter, bool allowed);

    error NotMinter(address caller);

    constructor(string memory name_, string memory symbol_) ERC721(name_, symbol_) Ownable(msg.sender) {}

    function setMinter(address minter, bool allowed) external onlyOwner {
        minters[minter] = allowed;
        emit MinterChanged(minter, allowed);
    }

    /// @notice Mints `tokenId` with `uri` to `to`; the owner or a minter only.
    function mintWithTokenURI(address to, uint256 tokenId, string calldata uri) external {
        if (msg.sender != owner() && !minters[msg.sender]) revert NotMinter(msg.sender);
        _mint(to, tokenId);
        _setTokenURI(tokenId, uri);
    }

    function tokenURI(uint256 tokenId) public view override(ERC721, ERC721URIStorage) returns (string memory) {
        return super.tokenURI(tokenId);
    }

    function supportsInterface(bytes4 interfaceId) public view override(ERC721, ERC721URIStorage) returns (bool) {
        return super.supportsInterface(interfaceId);
    }
}
