// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title ServiceChainToken
/// @notice Test ERC-20 that a bridge in mint/burn mode can mint and burn. The owner grants the
/// minter role (to the bridge); holders burn their own tokens.
contract ServiceChainToken is ERC20, ERC20Burnable, Ownable {
    mapping(address => bool) public minters;

    event MinterChanged(address indexed minter, bool allowed);

    error NotMinter(address caller);

    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) Ownable(msg.sender) {}

    function setMinter(address minter, bool allowed) external onlyOwner {
        minters[minter] = allowed;
        emit MinterChanged(minter, allowed);
    }

    /// @notice Mints `amount` to `to`; the owner or a minter only.
    function mint(address to, uint256 amount) external {
        if (msg.sender != owner() && !minters[msg.sender]) revert NotMinter(msg.sender);
        _mint(to, amount);
    }
}
