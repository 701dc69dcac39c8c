"""How far to trust an explanation: faithfulness (deletion, insertion, ROAD), localisation against lesion
masks, the parameter-randomisation sanity check, and what each method costs. torch and numpy, no Qt."""
