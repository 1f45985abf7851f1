// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice What a bridge in mint/burn mode needs from an ERC-20 it mints and burns.
interface IBridgeMintableERC20 {
    function mint(address to, uint256 amount) external;
    function burn(uint256 amount) external;
}

/// @notice What a bridge in mint/burn mode needs from an ERC-721 it mints and burns.
interface IBridgeMintableERC721 {
    function mintWithTokenURI(address to, uint256 tokenId, string calldata tokenURI) external;
    function burn(uint256 tokenId) external;
}
